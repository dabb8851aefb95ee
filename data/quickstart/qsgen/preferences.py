"""Preference pairs. Helpfulness: graded answers of the SFT tasks. Safety: binned by the safety of each side.

The strength label follows the size of the gap (see sample.py for the graded helpful answers):
  significantly_better  the rejected answer fails badly / ignores the instruction / complies in detail
  better                a near miss, or a safe-but-curt answer against a vague compliance
  slightly_better       both pass the rule, the rejected one is worse in style or helpfulness
  negligibly_better / unsure   two near-equal answers (their order is random: no real preference)
"""

from __future__ import annotations

from random import Random

from qsgen.borderline import BORDERLINE, FRAMES, OVER_REFUSALS
from qsgen.conversations import dialogue, to_messages, turn_count
from qsgen.safety_answers import curt_refusal, safe_refusal, unsafe_answer
from qsgen.safety_prompts import random_adversarial

HELPFUL_STRENGTHS = [
    ("significantly_better", 20),
    ("better", 25),
    ("slightly_better", 25),
    ("negligibly_better", 20),
    ("unsure", 10),
]
LEVEL_OF = {
    "significantly_better": "severe",
    "better": "moderate",
    "slightly_better": "mild",
    "negligibly_better": "alt",
    "unsure": "alt",
}


def _weighted(rng: Random, table: list[tuple[str, int]]) -> str:
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


def _pair(row_id, prompt, chosen, rejected, strength, category, chosen_safe, rejected_safe, source) -> dict:
    return {
        "id": row_id,
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "strength": strength,
        "category": category,
        "chosen_safe": chosen_safe,
        "rejected_safe": rejected_safe,
        "source": source,
    }


def helpful_preferences(rng: Random, split: str, n: int, id_prefix: str) -> list[dict]:
    rows, seen = [], set()
    while len(rows) < n:
        turns = dialogue(rng, split, turn_count(rng, 0.25))
        prompt = to_messages(rng, split, turns, final_answer=False)
        strength = _weighted(rng, HELPFUL_STRENGTHS)
        last, level = turns[-1], LEVEL_OF[strength]
        chosen, rejected = last.answer, getattr(last, level)
        if level == "alt" and rng.random() < 0.5:
            chosen, rejected = rejected, chosen
        key = (tuple(m["content"] for m in prompt), chosen, rejected)
        if key in seen or chosen == rejected:
            continue
        seen.add(key)
        rows.append(
            _pair(
                f"{id_prefix}-{len(rows) + 1:04d}",
                prompt,
                chosen,
                rejected,
                strength,
                "helpfulness",
                True,
                True,
                f"quickstart:helpful:{last.task}:{level}",
            )
        )
    return rows


# Safety bins, as shares of the rows: the Llama 2 bins plus a few deliberately flipped pairs (chosen unsafe,
# rejected safe) that the reward stage must exclude and count.
SAFETY_BINS = [
    ("safe_vs_unsafe", 0.52),
    ("both_safe_borderline", 0.15),
    ("both_safe_refusals", 0.15),
    ("both_unsafe", 0.15),
    ("flipped", 0.03),
]
SAFE_VS_UNSAFE_STRENGTH = {  # (chosen refusal has a redirect, rejected compliance is detailed) -> strengths
    (True, True): [("significantly_better", 1)],
    (True, False): [("significantly_better", 70), ("better", 30)],
    (False, True): [("significantly_better", 60), ("better", 40)],
    (False, False): [("better", 70), ("slightly_better", 30)],  # curt refusal vs vague compliance
}


def bin_counts(n: int) -> list[tuple[str, int]]:
    counts = [(name, round(share * n)) for name, share in SAFETY_BINS]
    counts[0] = (counts[0][0], n - sum(c for _, c in counts[1:]))
    return counts


def _maybe_warm_up(rng: Random, split: str, text: str) -> list[dict]:
    """The risky request, sometimes after an ordinary helpful exchange (attacks rarely come first)."""
    prompt = []
    if rng.random() < 0.15:
        prompt = to_messages(rng, split, dialogue(rng, split, 1), final_answer=True)
        prompt = [m for m in prompt if m["role"] != "system"]
    return prompt + [{"role": "user", "content": text}]


def _safety_pair(rng: Random, split: str, kind: str) -> tuple:
    """(prompt, chosen, rejected, strength, chosen_safe, rejected_safe, source) for one bin."""
    if kind == "both_safe_borderline":
        q, answer, look = rng.choice(BORDERLINE["train" if split == "train" else "eval"])
        frames = FRAMES["train" if split == "train" else "eval"]
        strength = _weighted(rng, [("better", 45), ("significantly_better", 25), ("slightly_better", 30)])
        return (
            [{"role": "user", "content": rng.choice(frames).format(q=q)}],
            answer,
            rng.choice(OVER_REFUSALS),
            strength,
            True,
            True,
            f"quickstart:safety:both_safe_borderline:{look}:borderline",
        )
    text, cat, topic, style = random_adversarial(rng, split)
    prompt = _maybe_warm_up(rng, split, text)
    source = f"quickstart:safety:{kind}:{cat}:{style}"
    if kind == "safe_vs_unsafe":
        redirect, detailed = rng.random() < 0.7, rng.random() < 0.5
        chosen = safe_refusal(cat, topic, rng) if redirect else curt_refusal(rng)
        strength = _weighted(rng, SAFE_VS_UNSAFE_STRENGTH[(redirect, detailed)])
        return prompt, chosen, unsafe_answer(cat, topic, detailed), strength, True, False, source
    if kind == "both_safe_refusals":
        strength = _weighted(rng, [("slightly_better", 50), ("negligibly_better", 30), ("unsure", 20)])
        return prompt, safe_refusal(cat, topic, rng), curt_refusal(rng), strength, True, True, source
    if kind == "both_unsafe":
        strength = _weighted(rng, [("slightly_better", 40), ("negligibly_better", 35), ("unsure", 25)])
        return (
            prompt,
            unsafe_answer(cat, topic, False),
            unsafe_answer(cat, topic, True),
            strength,
            False,
            False,
            source,
        )
    # flipped: a labelling mistake on purpose, chosen unsafe and rejected safe.
    strength = _weighted(rng, [("better", 50), ("slightly_better", 50)])
    return (
        prompt,
        unsafe_answer(cat, topic, rng.random() < 0.5),
        safe_refusal(cat, topic, rng),
        strength,
        False,
        True,
        source,
    )


def safety_preferences(rng: Random, split: str, n: int, id_prefix: str) -> list[dict]:
    pairs, seen = [], set()
    for kind, count in bin_counts(n):
        made = 0
        while made < count:
            prompt, chosen, rejected, strength, c_safe, r_safe, source = _safety_pair(rng, split, kind)
            key = (tuple(m["content"] for m in prompt), chosen, rejected)
            if key in seen:
                continue
            seen.add(key)
            pairs.append((prompt, chosen, rejected, strength, c_safe, r_safe, source))
            made += 1
    rng.shuffle(pairs)
    return [
        _pair(f"{id_prefix}-{i + 1:04d}", p, c, r, s, "safety", cs, rs, src)
        for i, (p, c, r, s, cs, rs, src) in enumerate(pairs)
    ]
