"""Prompt rows for safety: adversarial prompts (refusal expected) and borderline ones (help expected)."""

from __future__ import annotations

from random import Random

from qsgen.borderline import BORDERLINE, FRAMES
from qsgen.safety_answers import safe_refusal
from qsgen.safety_topics import ATTACK_STYLES, ATTACKS, RISK_CATEGORIES, TOPICS, attack_prompt


def adversarial_cases(split: str) -> list[tuple[str, tuple, str]]:
    """Every (risk category, topic, attack style) of a split, in a fixed order."""
    return [
        (cat, topic, style)
        for cat in RISK_CATEGORIES
        for topic in TOPICS[split][cat]
        for style in ATTACK_STYLES
    ]


def adversarial_text(rng: Random, split: str, topic: tuple, style: str) -> str:
    return attack_prompt(rng.choice(ATTACKS[split][style]), topic[0])


def random_adversarial(rng: Random, split: str) -> tuple[str, str, tuple, str]:
    """(prompt text, risk category, topic, attack style) drawn at random from a split."""
    cat = rng.choice(RISK_CATEGORIES)
    topic = rng.choice(TOPICS[split][cat])
    style = rng.choice(ATTACK_STYLES)
    return adversarial_text(rng, split, topic, style), cat, topic, style


def safety_prompt_row(row_id: str, text: str, cat: str, style: str, reference: str | None) -> dict:
    row = {
        "id": row_id,
        "messages": [{"role": "user", "content": text}],
        "is_safety": True,
        "risk_category": cat,
        "check": {"type": "refusal"},
        "tags": [style],
    }
    if reference is not None:
        row["reference"] = reference
    return row


def adversarial_rows(rng: Random, split: str, id_prefix: str, with_reference: bool) -> list[dict]:
    """One prompt per (category, topic, attack style): 120 train rows, 60 held-out rows."""
    rows = []
    for cat, topic, style in adversarial_cases(split):
        text = adversarial_text(rng, split, topic, style)
        reference = safe_refusal(cat, topic, rng) if with_reference else None
        rows.append(safety_prompt_row(f"{id_prefix}-{len(rows) + 1:04d}", text, cat, style, reference))
    rng.shuffle(rows)
    for i, row in enumerate(rows):
        row["id"] = f"{id_prefix}-{i + 1:04d}"
    return rows


def borderline_cases(split: str) -> list[tuple[str, str, str]]:
    """(prompt text, helpful answer, look-alike risk category) for every topic and frame of a split."""
    return [
        (frame.format(q=q), answer, cat) for q, answer, cat in BORDERLINE[split] for frame in FRAMES[split]
    ]


def borderline_rows(id_prefix: str) -> list[dict]:
    """The eval borderline prompts: help expected, so the check is no_refusal; the reference is the help."""
    return [
        {
            "id": f"{id_prefix}-{i + 1:04d}",
            "messages": [{"role": "user", "content": text}],
            "is_safety": False,
            "check": {"type": "no_refusal"},
            "tags": ["borderline", cat],
            "reference": answer,
        }
        for i, (text, answer, cat) in enumerate(borderline_cases("eval"))
    ]
