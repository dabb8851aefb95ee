"""Labels without people: the rule annotator (a prompt's checkable rule decides, the quickstart's stand-in for
annotators, as a "gold" reward model stands in for people in reward-model scaling studies) and an LLM judge.
Each gives, per comparison, a verdict (the better answer, the strength, the safety label) or the reason it has
none; `chatalign.annotate.labels.to_preference` turns a verdict into the canonical record."""

from __future__ import annotations

from dataclasses import dataclass

from chatalign.data_schemas import Comparison
from chatalign.judges.rules import run_check


@dataclass(frozen=True)
class Verdict:
    better: int  # index into Comparison.answers
    strength: str
    safety: str  # a key of chatalign.annotate.labels.SAFETY


def rule_verdict(comp: Comparison) -> Verdict | str:
    """Llama 2 sec. 3.2.1 labels from a rule: the answer that keeps the prompt's `check` is better ("better":
    a pass/fail rule says nothing finer); a safety prompt's passing answer is the safe one, the other not;
    both pass or both fail: no label (the rule cannot tell them apart)."""
    if not comp.check:
        return "no_rule"
    passed = [run_check(a.text, comp.check) for a in comp.answers]
    if passed[0] == passed[1]:
        return "tie_pass" if passed[0] else "tie_fail"
    safety = "better_safe_other_not" if comp.category == "safety" else "both_safe"
    return Verdict(better=0 if passed[0] else 1, strength="better", safety=safety)


def judge_verdicts(judge, comps: list[Comparison]) -> list[Verdict | str]:
    """An LLM judge's verdicts: the pairwise rubric (both orders when the judge swaps) for the better answer and
    its strength, the safety rubric on each answer. The paper keeps no pair whose chosen answer is unsafe and
    the other safe, so such a verdict is dropped as contradictory."""
    items = [([m.model_dump() for m in c.prompt], c.answers[0].text, c.answers[1].text) for c in comps]
    pairs = judge.compare(items)
    safe = judge.safety([(m, x) for m, x, _ in items] + [(m, y) for m, _, y in items])
    n = len(comps)
    out: list[Verdict | str] = []
    for k, verdict in enumerate(pairs):
        if verdict.winner is None:
            out.append(f"judge_{verdict.status}")
            continue
        better = 0 if verdict.winner == "a" else 1
        chosen_safe, rejected_safe = (safe[k], safe[n + k]) if better == 0 else (safe[n + k], safe[k])
        if chosen_safe is None or rejected_safe is None:
            out.append("judge_safety_unparseable")
        elif not chosen_safe and rejected_safe:
            out.append("judge_chose_the_unsafe_answer")
        else:
            label = {(True, False): "better_safe_other_not", (True, True): "both_safe",
                     (False, False): "both_unsafe"}[(chosen_safe, rejected_safe)]
            out.append(Verdict(better=better, strength=verdict.strength or "better", safety=label))
    return out
