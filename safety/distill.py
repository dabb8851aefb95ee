"""Safety context distillation (Llama 2, arXiv 2307.09288, sec. 4.2.4), the pure part.

For each adversarial prompt the model answers twice: once with the safety context (the preprompt plus the
prompt's risk-category answer template) put before the prompt, once without. The safety RM scores both
answers *on the prompt without the context* (that is the prompt the fine-tuned model will see). The
preprompted answer becomes a training row (the prompt without the context, the preprompted answer) only where
its safety score is higher than the plain answer's, by more than `margin`: the paper found that distilling
every answer hurts helpful answers and makes the model vague, and gates on the safety RM for that reason.

Sampling and scoring (torch) live in chatalign.safety.distill_sampling; this module has no heavy import.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field

from chatalign.errors import ConfigError

PLACEMENTS = ("system", "user_prefix")
UNFINISHED = ("keep", "trim_to_sentence", "drop")

# A sentence ends at . ! or ? (optionally followed by a closing quote or bracket), then whitespace or the end.
_SENTENCE_END = re.compile(r"[.!?][\"')\]]?(?=\s|$)")


def with_safety_context(messages: list[dict], context: str, placement: str) -> list[dict]:
    """The prompt as the model sees it while generating the distillation target.

    placement "system": the context is the system message (put before an existing one, which is kept);
    "user_prefix": the context is written before the last user message (the request being answered)."""
    if placement not in PLACEMENTS:
        raise ConfigError(f"placement={placement!r}: expected one of {', '.join(PLACEMENTS)}")
    out = [dict(m) for m in messages]
    if placement == "system":
        if out and out[0]["role"] == "system":
            out[0]["content"] = f"{context}\n\n{out[0]['content']}"
        else:
            out.insert(0, {"role": "system", "content": context})
        return out
    last_user = max(i for i, m in enumerate(out) if m["role"] == "user")
    out[last_user]["content"] = f"{context}\n\n{out[last_user]['content']}"
    return out


def trim_to_sentence(text: str) -> str:
    """The text up to its last complete sentence; "" when it has none."""
    ends = list(_SENTENCE_END.finditer(text))
    return text[:ends[-1].end()].strip() if ends else ""


def settle_answer(text: str, finished: bool, unfinished: str) -> str | None:
    """The answer to score and train on: an answer cut by max_new_tokens is kept, trimmed to its last full
    sentence, or dropped (None); an empty answer is None whatever the rule."""
    if unfinished not in UNFINISHED:
        raise ConfigError(f"unfinished={unfinished!r}: expected one of {', '.join(UNFINISHED)}")
    text = text.strip()
    if not finished:
        if unfinished == "drop":
            return None
        if unfinished == "trim_to_sentence":
            text = trim_to_sentence(text)
    return text or None


def keep_distilled(score_with: float, score_without: float, margin: float = 0.0) -> bool:
    """Context-distillation gate (Llama 2 sec. 4.2.4): keep the preprompted answer iff its safety RM score beats
    the plain answer's by more than `margin` (raw RM units); ties and NaN scores are not kept."""
    gain = score_with - score_without
    return not math.isnan(gain) and gain > margin


@dataclass
class DistillCandidate:
    """One adversarial prompt's pair of answers, their safety scores (raw RM output) and the gate's verdict."""

    id: str
    risk_category: str
    attack_style: str
    messages: list[dict]  # the prompt without the safety context
    answer_with: str | None  # preprompted answer, settled (None: dropped or empty)
    answer_without: str  # plain answer as generated (the baseline; may be empty)
    finished_with: bool = True
    finished_without: bool = True
    score_with: float | None = None
    score_without: float | None = None
    kept: bool = False
    reason: str = "not_scored"  # kept | no_gain | unusable_answer | not_scored
    extra: dict = field(default_factory=dict)

    @property
    def gain(self) -> float | None:
        if self.score_with is None or self.score_without is None:
            return None
        return self.score_with - self.score_without

    def to_dict(self) -> dict:
        out = asdict(self)
        out["gain"] = self.gain
        return out


def apply_gate(candidates: list[DistillCandidate], margin: float) -> list[DistillCandidate]:
    """Set `kept` and `reason` on every candidate (in place; returned for chaining)."""
    for c in candidates:
        if c.answer_with is None:
            c.kept, c.reason = False, "unusable_answer"
        elif c.score_with is None or c.score_without is None:
            c.kept, c.reason = False, "not_scored"
        else:
            c.kept = keep_distilled(c.score_with, c.score_without, margin)
            c.reason = "kept" if c.kept else "no_gain"
    return candidates


def training_conversations(candidates: list[DistillCandidate]) -> list[dict]:
    """Conversation rows of the kept candidates: the prompt *without* the safety context, the preprompted answer."""
    rows = []
    for c in candidates:
        if not c.kept:
            continue
        assert c.answer_with is not None  # apply_gate keeps only usable answers
        rows.append({"id": f"distill-{c.id}", "messages": [dict(m) for m in c.messages]
                     + [{"role": "assistant", "content": c.answer_with}],
                     "tags": ["safety_distill", c.risk_category, c.attack_style]})
    return rows


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _group_stats(group: list[DistillCandidate]) -> dict:
    gains = [c.gain for c in group if c.gain is not None]
    kept = [c for c in group if c.kept]
    return {"candidates": len(group), "kept": len(kept),
            "kept_fraction": round(len(kept) / len(group), 4) if group else None,
            "unusable": sum(c.reason == "unusable_answer" for c in group),
            "mean_gain": _mean(gains), "mean_gain_kept": _mean([c.gain for c in kept if c.gain is not None]),
            "mean_score_with": _mean([c.score_with for c in group if c.score_with is not None]),
            "mean_score_without": _mean([c.score_without for c in group if c.score_without is not None])}


def distill_stats(candidates: list[DistillCandidate]) -> dict:
    """Counts and score gains, overall and per risk category and attack style (what the report shows)."""
    by_cat: dict[str, list[DistillCandidate]] = defaultdict(list)
    by_style: dict[str, list[DistillCandidate]] = defaultdict(list)
    for c in candidates:
        by_cat[c.risk_category].append(c)
        by_style[c.attack_style].append(c)
    return {"all": _group_stats(candidates),
            "by_category": {k: _group_stats(v) for k, v in sorted(by_cat.items())},
            "by_style": {k: _group_stats(v) for k, v in sorted(by_style.items())}}
