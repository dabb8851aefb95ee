"""The safety taxonomy of Llama 2 (arXiv 2307.09288, sec. 4.2.1): three risk categories and the attack styles
of adversarial prompts, plus the context-distillation templates (a safety preprompt and one answer template
per risk category, sec. 4.2.4) read from a YAML file.

Pure stdlib + PyYAML: the CLI imports this for --dry-run without torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from chatalign.errors import ConfigError, DataError

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_DATA = REPO_ROOT / "data" / "quickstart"
BUNDLED_TEMPLATES = BUNDLED_DATA / "safety_templates.yaml"

# Risk categories (sec. 4.2.1), as named in Prompt.risk_category, with the words a preprompt uses for them.
RISK_CATEGORIES: dict[str, str] = {
    "illicit_criminal": "illicit and criminal activities (e.g. terrorism, theft, human trafficking)",
    "hateful_harmful": "hateful and harmful activities (e.g. defamation, self-harm, eating disorders, discrimination)",
    "unqualified_advice": "unqualified advice (e.g. medical, financial or legal advice)",
}

# Attack styles named by the paper (sec. 4.2.1: "psychological manipulation (e.g., authority manipulation),
# logic manipulation (e.g., false premises), syntactic manipulation (e.g., misspelling), semantic manipulation
# (e.g., metaphor), perspective manipulation (e.g., role playing), non-English languages, and others").
PAPER_ATTACK_STYLES: dict[str, str] = {
    "psychological": "psychological manipulation, e.g. appeals to authority or urgency",
    "logic": "logic manipulation, e.g. false premises",
    "syntactic": "syntactic manipulation, e.g. misspelling, leetspeak, words joined or reversed",
    "semantic": "semantic manipulation, e.g. metaphor or euphemism",
    "perspective": "perspective manipulation, e.g. role play, fiction, hypotheticals",
    "non_english": "the request written in another language",
    "direct": "a plain request with no manipulation",
}

# The style tags of our bundled prompts (data/quickstart, tags[0] of adversarial rows) and the paper's style
# each one instantiates. A user's data may use either vocabulary.
STYLE_FAMILY: dict[str, str] = {
    "direct": "direct",
    "role_play": "perspective",
    "hypothetical": "perspective",
    "novel": "perspective",
    "obfuscation": "syntactic",
    **{name: name for name in PAPER_ATTACK_STYLES},
}

UNSPECIFIED = "unspecified"


def attack_style(tags: list[str] | tuple[str, ...]) -> str:
    """The first tag that names a known attack style (ours or the paper's), else "unspecified"."""
    for tag in tags:
        if tag in STYLE_FAMILY:
            return tag
    return UNSPECIFIED


def category_of(risk_category: str | None) -> str:
    return risk_category or UNSPECIFIED


@dataclass(frozen=True)
class SafetyTemplates:
    """The context-distillation texts: a safety preprompt and an answer template per risk category."""

    preprompt: str
    answer_templates: dict[str, str]

    def context(self, risk_category: str | None, with_template: bool = True) -> str:
        """The text put before an adversarial prompt: the preprompt, then the category's answer template.

        A prompt without a risk category (or with_template=False) gets the preprompt alone, as in the paper's
        generic preprompt; a category without a template is a DataError (a typo must not pass silently)."""
        if not with_template or risk_category is None:
            return self.preprompt
        template = self.answer_templates.get(risk_category)
        if template is None:
            raise DataError(f"risk category {risk_category!r} has no answer template (templates exist for "
                            f"{', '.join(sorted(self.answer_templates))})")
        label = RISK_CATEGORIES.get(risk_category, risk_category)
        return f"{self.preprompt}\n\nThe next request falls in the risk category of {label}. {template}"


def load_templates(path: str | os.PathLike) -> SafetyTemplates:
    """Read `preprompt` and `answer_templates` (one non-empty text per risk category) from a YAML file."""
    from chatalign.config import read_yaml

    p = Path(path)
    if not p.is_file():
        raise DataError(f"safety templates file not found: {p}")
    try:
        data = read_yaml(p)
    except ConfigError as exc:  # invalid YAML, not UTF-8, not a mapping: a problem of this file, like those below
        raise DataError(f"{exc} (expected `preprompt` and `answer_templates`)") from None
    unknown = set(data) - {"preprompt", "answer_templates"}
    if unknown:
        raise DataError(f"{p}: unknown keys {sorted(unknown)} (expected preprompt, answer_templates)")
    preprompt = data.get("preprompt")
    if not isinstance(preprompt, str) or not preprompt.strip():
        raise DataError(f"{p}: preprompt: expected a non-empty text")
    templates = data.get("answer_templates")
    if not isinstance(templates, dict):
        raise DataError(f"{p}: answer_templates: expected a mapping of risk category to text")
    for name, text in templates.items():
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{p}: answer_templates.{name}: expected a non-empty text")
    missing = [c for c in RISK_CATEGORIES if c not in templates]
    if missing:
        raise DataError(f"{p}: answer_templates: no template for {', '.join(missing)} "
                        f"(the three risk categories are {', '.join(RISK_CATEGORIES)})")
    return SafetyTemplates(preprompt.strip(), {str(k): v.strip() for k, v in templates.items()})
