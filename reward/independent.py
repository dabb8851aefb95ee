"""A reward model on the independent preference sets (pref_helpful.jsonl, pref_safety.jsonl in data/independent),
with two trivial baselines beside it so that a shortcut shows: "prefer the longer answer", and a bag of words
trained on this RM's own training pairs (chatalign.evaluation.baselines). Each figure on the independent pairs
stands beside the same figure on the run's in-distribution held-out pairs (`data.eval`); the RM's accuracy per
preference strength (Llama 2 Table 8) is given for the file of its own kind. Written to independent.json (suite
"preferences"); an RM has no base or before model, so only the `after` figures are set.
"""

from __future__ import annotations

from collections import defaultdict

from chatalign.evaluation.record import Figures, IndependentRow
from chatalign.reward.config import RewardConfig

FILES = {"helpful": "pref_helpful.jsonl", "safety": "pref_safety.jsonl"}
OWN_FILE = {"helpfulness": "helpful", "safety": "safety"}
SUITE = "preferences"


def training_pairs(cfg: RewardConfig, load_source) -> list:
    """The pairs the RM was trained on: its sources read by `load_source` (chatalign.reward.run's) and drawn
    into the mix exactly as `prepare` draws them."""
    from chatalign.reward.mixing import sample_mix

    pools = [load_source(cfg, src, "train")[0] for src in cfg.data.sources]
    mix = sample_mix(pools, [s.ratio for s in cfg.data.sources], cfg.train.seed, cfg.data.total,
                     [s.max_repeats for s in cfg.data.sources])
    return [p for _, p in mix.items]


def load_independent_pairs(cfg: RewardConfig) -> dict[str, list]:
    """{helpful: pairs, safety: pairs} of the independent files named in `independent.preferences.files` (chosen-
    unsafe pairs left out as in training)."""
    from chatalign.data_schemas import load_records
    from chatalign.reward.safety_bins import drop_unsafe_over_safe

    out, wanted = {}, cfg.independent.preferences.files or list(FILES)
    for name, file_name in FILES.items():
        if name not in wanted:
            continue
        prefs = list(load_records(cfg.independent.data_file(file_name), "preference").records)
        if cfg.data.exclude_unsafe_chosen:
            prefs, _ = drop_unsafe_over_safe(prefs)
        limit = cfg.independent.preferences.max_pairs
        out[name] = prefs[:limit] if limit else prefs
    return out


def check_independent(cfg: RewardConfig) -> dict[str, int]:
    """The independent preference files are there and valid (a dry run's check); {name: pairs}."""
    if not cfg.independent.enabled or SUITE not in cfg.independent.suites_for([SUITE]):
        return {}
    return {name: len(pairs) for name, pairs in load_independent_pairs(cfg).items()}


def _accuracy(rows: list[dict]) -> float | None:
    return sum(r["chosen"] > r["rejected"] for r in rows) / len(rows) if rows else None


def _figures(value: float | None, n: int) -> Figures:
    return Figures(after=value, n=n)


def _row(key: str, name: str, judge: str, value: float | None, n: int, in_dist: Figures | None) -> IndependentRow:
    return IndependentRow(suite=SUITE, metric=name, key=key, higher_is_better=True, unit="%",
                          independent=_figures(value, n), in_distribution=in_dist, judge=judge)


def file_rows(name: str, pairs: list, scored: list[dict], bow, own: bool, heldout: dict) -> list[IndependentRow]:
    """The RM's and the baselines' accuracy on one independent file; per strength for the RM's own kind.
    `heldout`: the same figures on the in-distribution held-out pairs (used where `own`)."""
    from chatalign.evaluation.baselines import length_accuracy

    chosen, rejected = [p.chosen for p in pairs], [p.rejected for p in pairs]

    def indist(key: str) -> Figures | None:
        return heldout.get(key) if own else None

    rows = [_row(f"rm_accuracy_{name}", f"RM pair accuracy: {name} pairs", "rm", _accuracy(scored), len(pairs),
                 indist("rm")),
            _row(f"length_baseline_{name}", f"baseline, prefer the longer answer: {name} pairs", "length",
                 length_accuracy(chosen, rejected), len(pairs), indist("length")),
            _row(f"bow_baseline_{name}", f"baseline, bag of words trained on the RM's pairs: {name} pairs",
                 "bag-of-words", bow.accuracy(chosen, rejected), len(pairs), indist("bow"))]
    if own:
        by_strength: dict[str, list[dict]] = defaultdict(list)
        for r in scored:
            by_strength[r["strength"]].append(r)
        for strength, group in by_strength.items():
            rows.append(_row(f"rm_accuracy_{name}_{strength}", f"RM pair accuracy: {name} pairs, {strength}", "rm",
                             _accuracy(group), len(group), indist(f"rm_{strength}")))
    return rows


def heldout_figures(prep, evaluation: dict | None, bow) -> dict[str, Figures]:
    """The in-distribution figures: the RM's held-out accuracy (overall, per strength) and the baselines'."""
    from chatalign.evaluation.baselines import length_accuracy

    pairs = [p for prefs in prep.eval_sets.values() for p in prefs]
    if not pairs or evaluation is None:
        return {}
    chosen, rejected = [p.chosen for p in pairs], [p.rejected for p in pairs]
    out = {"rm": _figures(evaluation["overall"]["accuracy"], evaluation["overall"]["pairs"]),
           "length": _figures(length_accuracy(chosen, rejected), len(pairs)),
           "bow": _figures(bow.accuracy(chosen, rejected), len(pairs))}
    for strength, row in evaluation.get("per_strength", {}).items():
        out[f"rm_{strength}"] = _figures(row["accuracy"], row["pairs"])
    return out


def run_reward_independent(cfg: RewardConfig, run, prep, evaluation: dict | None, load_source):
    """Write the RM's independent.json (None when `independent` is off or leaves out the preferences suite);
    `load_source` reads a training source as the run did (chatalign.reward.run.load_source)."""
    if not check_independent(cfg):
        return None
    from chatalign.evaluation.baselines import BagOfWordsBaseline
    from chatalign.evaluation.stage_hook import CoreEvaluation, write_record
    from chatalign.reward.evaluate import score_sets
    from chatalign.reward.scorer import load_scorer

    train = training_pairs(cfg, load_source)
    bow = BagOfWordsBaseline.fit([p.chosen for p in train], [p.rejected for p in train],
                                 cfg.independent.preferences.bow_vocabulary)
    heldout = heldout_figures(prep, evaluation, bow)
    sets = load_independent_pairs(cfg)
    scored = score_sets(load_scorer(run.model_dir), sets, cfg.independent.preferences.batch_tokens)
    rows = []
    for name, pairs in sets.items():
        rows += file_rows(name, pairs, [r for r in scored if r["file"] == name], bow, OWN_FILE[cfg.kind] == name,
                          heldout)
    empty = CoreEvaluation(rows=[], agreement=[], results={}, model=str(run.model_dir), start_model=cfg.model.name)
    return write_record(run.path, empty, extra_rows=rows)
