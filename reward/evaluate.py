"""Held-out accuracy of a reward model: overall, per preference strength (Llama 2 Table 8), per file and
per source, and per safety bin.

A pair counts as correct when the chosen answer scores strictly higher than the rejected one. Pairs whose
chosen answer is unsafe and the rejected one safe are left out (as in training) and counted. The model is
always loaded through the public scorer, so what is measured is what later stages get.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from chatalign.reward.margins import STRENGTHS

NONE = "none"  # pairs without a strength label
TABLE8_COLUMNS = ("significantly_better", "better", "slightly_better", "negligibly_better/unsure")


def load_eval_sets(paths: Sequence[str], names: Sequence[str] | None = None, formats: Sequence[str] | None = None,
                   exclude_unsafe_chosen: bool = True, max_pairs: int | None = None):
    """{name: pairs} of held-out files (bad rows raise, with file and line) and {name: excluded count}."""
    from chatalign.data_schemas import load_records
    from chatalign.reward.safety_bins import drop_unsafe_over_safe

    names = list(names) if names else unique_names(paths)
    formats = list(formats) if formats else ["auto"] * len(paths)
    sets, excluded = {}, {}
    for path, name, fmt in zip(paths, names, formats, strict=True):
        prefs = list(load_records(path, "preference", fmt=fmt).records)
        if exclude_unsafe_chosen:
            prefs, excluded[name] = drop_unsafe_over_safe(prefs)
        sets[name] = prefs[:max_pairs] if max_pairs else prefs
    return sets, excluded


def unique_names(paths: Sequence[str]) -> list[str]:
    """File stems as test-set names; `stem#2`, `stem#3` where two files share a stem."""
    out: list[str] = []
    for p in paths:
        stem = Path(p).name.split(".")[0]
        out.append(stem if stem not in out else f"{stem}#{sum(x.split('#')[0] == stem for x in out) + 1}")
    return out


def _acc(rows: list[dict]) -> dict:
    n = len(rows)
    correct = sum(r["chosen"] > r["rejected"] for r in rows)
    return {"accuracy": correct / n if n else None, "pairs": n}


def table8_column(strength: str) -> str:
    return "negligibly_better/unsure" if strength in ("negligibly_better", "unsure") else strength


def source_level(sources: Sequence[str], max_groups: int = 12) -> int:
    """How many ':'-separated parts of the record sources to group by: the most that give at most
    `max_groups` groups (so "quickstart:safety:both_unsafe:illicit:novel" reads as a family, not 40 rows)."""
    depth = max((s.count(":") + 1 for s in sources), default=1)
    for level in range(depth, 0, -1):
        if len({":".join(s.split(":")[:level]) for s in sources}) <= max_groups:
            return level
    return 1


def accuracy_report(rows: Sequence[dict], max_source_groups: int = 12) -> dict:
    """Accuracy tables from scored pairs: dicts with file, source, strength, safety_bin, chosen, rejected."""
    from chatalign.reward.safety_bins import BINS, UNLABELLED

    level = source_level([r["source"] for r in rows], max_source_groups)
    rows = [{**r, "source_group": ":".join(r["source"].split(":")[:level])} for r in rows]

    def grouped(key, order=None):
        groups: dict[str, list[dict]] = defaultdict(list)
        for r in rows:
            groups[r[key]].append(r)
        keys = [k for k in (order or sorted(groups)) if k in groups]
        return {k: _acc(groups[k]) for k in keys}

    table8: dict[str, dict] = {}
    for name in ["all", *sorted({r["file"] for r in rows})]:
        sub = [r for r in rows if name == "all" or r["file"] == name]
        line = {}
        for col in TABLE8_COLUMNS:
            acc = _acc([r for r in sub if table8_column(r["strength"]) == col])
            line[col] = acc["accuracy"]
        line["avg"] = _acc(sub)["accuracy"]
        table8[name] = line
    gaps = [r["chosen"] - r["rejected"] for r in rows]
    report = {
        "overall": {**_acc(list(rows)), "mean_gap": sum(gaps) / len(gaps) if gaps else None},
        "per_strength": grouped("strength", [*STRENGTHS, NONE]),
        "table8": table8,
        "per_file": grouped("file"),
        "per_source": grouped("source_group"),
    }
    bins = grouped("safety_bin", list(BINS))
    if any(k != UNLABELLED for k in bins):
        report["per_safety_bin"] = bins
    return report


def score_sets(scorer, sets: dict[str, list], batch_tokens: int = 8192) -> list[dict]:
    """Score both answers of every pair; one row per pair for accuracy_report."""
    from chatalign.reward.margins import strength_name
    from chatalign.reward.pairs import message_dicts
    from chatalign.reward.safety_bins import pair_bin

    rows = []
    for name, prefs in sets.items():
        if not prefs:
            continue
        prompts = [message_dicts(p.prompt) for p in prefs]
        scores = scorer.score(prompts + prompts, [p.chosen for p in prefs] + [p.rejected for p in prefs],
                              batch_tokens=batch_tokens).tolist()
        n = len(prefs)
        for i, p in enumerate(prefs):
            rows.append({"file": name, "source": p.source or name, "strength": strength_name(p.strength) or NONE,
                         "safety_bin": pair_bin(p), "chosen": scores[i], "rejected": scores[n + i]})
    return rows


def evaluate_sets(scorer, sets: dict[str, list], excluded: dict[str, int], batch_tokens: int = 8192) -> dict:
    rows = score_sets(scorer, sets, batch_tokens)
    if not rows:
        from chatalign.errors import DataError

        raise DataError("no held-out pairs to evaluate")
    report = accuracy_report(rows)
    report["excluded_chosen_unsafe_rejected_safe"] = dict(excluded)
    report["scores"] = {"chosen": [r["chosen"] for r in rows], "rejected": [r["rejected"] for r in rows]}
    return report


def evaluate_reward_model(model_dir, data_paths: str | Sequence[str], *, names: Sequence[str] | None = None,
                          formats: Sequence[str] | None = None, batch_tokens: int = 8192,
                          max_pairs: int | None = None, exclude_unsafe_chosen: bool = True,
                          device=None) -> dict:
    """Load the RM (run directory or HF dir) and held-out preference file(s); return the accuracy tables."""
    from chatalign.reward.scorer import load_scorer

    paths = [data_paths] if isinstance(data_paths, (str, Path)) else list(data_paths)
    sets, excluded = load_eval_sets([str(p) for p in paths], names, formats, exclude_unsafe_chosen, max_pairs)
    report = evaluate_sets(load_scorer(model_dir, device=device), sets, excluded, batch_tokens)
    report["model"] = str(model_dir)
    report["data"] = [str(p) for p in paths]
    return report
