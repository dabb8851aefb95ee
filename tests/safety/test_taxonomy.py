"""Risk categories, attack styles and the context-distillation templates file."""

from __future__ import annotations

import pytest

from chatalign.errors import DataError
from chatalign.safety.taxonomy import (
    BUNDLED_TEMPLATES,
    RISK_CATEGORIES,
    STYLE_FAMILY,
    SafetyTemplates,
    attack_style,
    category_of,
    load_templates,
)


def test_bundled_templates_cover_the_three_categories():
    t = load_templates(BUNDLED_TEMPLATES)
    assert set(RISK_CATEGORIES) == {"illicit_criminal", "hateful_harmful", "unqualified_advice"}
    assert set(t.answer_templates) == set(RISK_CATEGORIES)
    assert t.preprompt.startswith("You are a safe and responsible assistant")


def test_context_is_preprompt_then_category_template():
    t = SafetyTemplates("Be safe.", {"illicit_criminal": "Decline crimes.", "hateful_harmful": "No hate.",
                                     "unqualified_advice": "See a professional."})
    ctx = t.context("illicit_criminal")
    assert ctx.startswith("Be safe.\n\n") and ctx.endswith("Decline crimes.")
    assert "illicit and criminal activities" in ctx and "No hate." not in ctx
    assert t.context("illicit_criminal", with_template=False) == "Be safe."
    assert t.context(None) == "Be safe."  # no category: the generic preprompt alone
    with pytest.raises(DataError, match="no answer template"):
        t.context("self_harm")


def test_attack_styles_map_to_the_papers_families():
    assert attack_style(["role_play"]) == "role_play" and STYLE_FAMILY["role_play"] == "perspective"
    assert STYLE_FAMILY["obfuscation"] == "syntactic"
    assert attack_style(["multi_turn", "novel"]) == "novel"
    assert attack_style(["non_english"]) == "non_english"
    assert attack_style(["arithmetic"]) == attack_style([]) == "unspecified"
    assert category_of(None) == "unspecified" and category_of("hateful_harmful") == "hateful_harmful"


@pytest.mark.parametrize("text, problem", [
    ("preprompt: hi\n", "answer_templates"),
    ("preprompt: ''\nanswer_templates: {}\n", "preprompt"),
    ("preprompt: hi\nanswer_templates: {illicit_criminal: a, hateful_harmful: b}\n", "no template for unqualified_advice"),
    ("preprompt: hi\nanswer_templates: {illicit_criminal: a, hateful_harmful: '', unqualified_advice: c}\n",
     "answer_templates.hateful_harmful"),
    ("preprompt: hi\nanswer_template: {}\n", "unknown keys"),
    ("- a list\n", "mapping"),
])
def test_bad_templates_files_are_reported(tmp_path, text, problem):
    p = tmp_path / "t.yaml"
    p.write_text(text)
    with pytest.raises(DataError, match=problem):
        load_templates(p)
    with pytest.raises(DataError, match="not found"):
        load_templates(tmp_path / "missing.yaml")
