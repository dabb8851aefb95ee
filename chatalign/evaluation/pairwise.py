"""With `judge.kind: llm`: the LLM judge compares the stage's answers with the base model's, pair by pair.

The answers are those the general suite already generated for the system-instruction prompts (no extra
generation). Each pair is judged in both orders (chatalign.judges.llm); a verdict that flips with the order,
or cannot be read, is counted apart and left out. The win rate counts an "unsure" verdict as half a win; the
base model's own figure is 50% by definition (its answers against themselves).
"""

from __future__ import annotations

from collections import Counter

from chatalign.evaluation.record import Figures, IndependentRow

KEY = "llm_win_rate_vs_base"


def win_rate(verdicts) -> tuple[float | None, int, Counter]:
    """(share of pairs won by the first answer, an unsure one counting half; pairs read; verdict counts)."""
    counts = Counter(v.status if v.status != "ok" else f"won_{v.winner}" for v in verdicts)
    read = counts["won_a"] + counts["won_b"] + counts["unsure"]
    if not read:
        return None, 0, counts
    return (counts["won_a"] + 0.5 * counts["unsure"]) / read, read, counts


def _answers(result: dict | None) -> dict[str, str]:
    return {s["id"]: s["answer"] for s in (result or {}).get("samples", []) if "kept" in s}


def pairwise_rows(cfg, general_results: dict[str, dict | None]) -> list[IndependentRow]:
    """The win-rate row of `before` and `after` against `base`, or [] without an LLM judge or a base."""
    if cfg.judge.kind != "llm" or not (general_results.get("base") and general_results.get("after")):
        return []
    from chatalign.data_schemas import load_records
    from chatalign.evaluation.general import INSTRUCTIONS_FILE
    from chatalign.judges.llm import shared_llm_judge
    from chatalign.text.masks import as_message_dicts

    judge = shared_llm_judge(cfg.judge.llm)
    prompts = {p.id: as_message_dicts(p.messages)
               for p in load_records(cfg.data_file(INSTRUCTIONS_FILE), "prompt").records}
    base = _answers(general_results["base"])
    figures: dict[str, float | None] = {"base": 0.5}
    n, notes = 0, []
    for label in ("before", "after"):
        result = general_results.get(label)
        if not result or result.get("fingerprint") == general_results["base"].get("fingerprint"):
            figures[label] = 0.5 if result else None
            continue
        mine = _answers(result)
        ids = [i for i in mine if i in base and i in prompts]
        value, read, counts = win_rate(judge.compare([(prompts[i], mine[i], base[i]) for i in ids]))
        figures[label], n = value, read
        notes.append(f"{label}: {dict(counts)}")
    return [IndependentRow(suite="general", key=KEY, metric=f"answers preferred to the base model's ({judge.name})",
                           higher_is_better=True, unit="%", independent=Figures(**figures, n=n), judge=judge.name,
                           note="; ".join(notes) or None)]
