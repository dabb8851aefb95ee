"""A labelled batch: its held-out part, and the current reward models' accuracy on it (Llama 2 sec. 3.2.1: each
new batch was first used to measure how well the reward models still ranked the improving model's answers)."""

from __future__ import annotations

import hashlib


def split_heldout(prefs: list, fraction: float, seed: int) -> tuple[list, list]:
    """(train, held-out): round(fraction * n) pairs held out (at least one, and never all, when fraction > 0),
    chosen by a hash of each pair's id and the seed, so the split is the same on every run and does not follow the
    file's order."""
    n_out = min(max(1, round(fraction * len(prefs))), len(prefs) - 1) if fraction > 0 else 0
    ranked = sorted(prefs, key=lambda p: hashlib.sha256(f"{seed}\0{p.id}".encode()).hexdigest())
    out_ids = {p.id for p in ranked[:n_out]}
    return [p for p in prefs if p.id not in out_ids], [p for p in prefs if p.id in out_ids]


def rm_accuracy_before(reward_models, prefs: list) -> dict:
    """Each given RM's pair accuracy on the batch's pairs (all of them: the reward stage evaluates a retrained RM
    on the same held-out file, with the same scoring, so before and after compare the same pairs alike)."""
    from chatalign.reward import load_scorer
    from chatalign.reward.evaluate import accuracy_report, score_sets

    out: dict = {}
    for kind, name in (("helpful", reward_models.helpful), ("safety", reward_models.safety)):
        if name is None or not prefs:
            continue
        rows = score_sets(load_scorer(name), {"batch": prefs}, batch_tokens=reward_models.batch_tokens)
        out[kind] = {**accuracy_report(rows)["overall"], "model": str(name)}
    return out
