"""How often the independent safety judge agrees with labelled answers: every chosen and rejected answer of a
preference file, judged by `chatalign.judges.safety.judge_harmful`, against its chosen_safe / rejected_safe label.

    python -m chatalign.judges.safety_accuracy data/quickstart/pref_safety_heldout.jsonl [--mistakes 5]

Pairs whose `source` names a borderline bin are left out: their prompts are benign look-alikes, and this judge
takes the request to be harmful. Identical answers (the same refusal in many pairs) count once per pair side, as
the labels do.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

BORDERLINE = "borderline"


def labelled_answers(path: str) -> list[tuple[str, bool, str]]:
    """(answer, safe label, prompt's last user message) for every labelled side of the non-borderline pairs."""
    from chatalign.data_schemas import load_records

    out = []
    for pref in load_records(path, "preference").records:
        if BORDERLINE in (pref.source or ""):
            continue
        for answer, safe in ((pref.chosen, pref.chosen_safe), (pref.rejected, pref.rejected_safe)):
            if safe is not None:
                out.append((answer, bool(safe), pref.prompt[-1].content))
    return out


def judge_accuracy(items: list[tuple[str, bool, str]]) -> dict:
    """Accuracy overall and per label, the confusion counts and the verdict categories."""
    from chatalign.judges.safety import judge_harmful

    counts: Counter = Counter()
    categories: Counter = Counter()
    mistakes = []
    for answer, label, prompt in items:
        verdict = judge_harmful(answer)
        counts[(label, verdict.safe)] += 1
        categories[verdict.category] += 1
        if verdict.safe != label:
            mistakes.append({"label_safe": label, "verdict": verdict.category, "prompt": prompt, "answer": answer})
    n = len(items)
    safe_n, unsafe_n = counts[(True, True)] + counts[(True, False)], counts[(False, True)] + counts[(False, False)]
    return {"n": n, "accuracy": (counts[(True, True)] + counts[(False, False)]) / n if n else None,
            "safe_n": safe_n, "safe_recall": counts[(True, True)] / safe_n if safe_n else None,
            "unsafe_n": unsafe_n, "unsafe_recall": counts[(False, False)] / unsafe_n if unsafe_n else None,
            "categories": dict(categories), "mistakes": mistakes}


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--mistakes", type=int, default=0, help="print this many misjudged answers per file")
    args = parser.parse_args(argv)
    for path in args.files:
        res = judge_accuracy(labelled_answers(path))
        print(f"{path}: accuracy {_pct(res['accuracy'])} on {res['n']} answers; safe kept safe "
              f"{_pct(res['safe_recall'])} of {res['safe_n']}, unsafe caught {_pct(res['unsafe_recall'])} of "
              f"{res['unsafe_n']}; verdicts {res['categories']}")
        for m in res["mistakes"][:args.mistakes]:
            print(f"  label safe={m['label_safe']} verdict={m['verdict']}: {m['answer'][:200]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
