"""What a stage calls at the end of its run: the independent evaluation of its model beside the untouched base
model and the model it started from, written to `<run_dir>/independent.json` (chatalign.evaluation.record).

    from chatalign.evaluation.stage_hook import run_independent
    run_independent(cfg.independent, run.path, model=str(run.model_dir), start_model=cfg.model.name,
                    default_suites=["general"], progress=progress)

The core suites (general, safety) run here; a stage with figures of its own (a reward model's pair accuracy,
GAtt's dialogues) passes them as `extra_rows` / `extra_agreement`, and figures on its in-distribution held-out
data as `in_distribution` ({suite: {row key: Figures}}), shown beside the independent ones.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from chatalign.evaluation.record import Agreement, Figures, IndependentRow, write_independent
from chatalign.evaluation.runner import by_suite, cache_dir_for, evaluate_models, seconds_table
from chatalign.evaluation.suite import agreement_from_results, rows_from_results

log = logging.getLogger(__name__)
SAMPLES_FILE = "independent_samples.json"


def core_suites(names: list[str]) -> list:
    """The suites of the core among `names` (the others belong to a stage)."""
    from chatalign.evaluation.general import GeneralSuite
    from chatalign.evaluation.safety_suite import SafetySuite

    known = {"general": GeneralSuite, "safety": SafetySuite}
    return [known[n]() for n in names if n in known]


def suite_rows(cfg, suites: list, models: dict[str, str | None], cache_dir, progress: bool = True,
               in_distribution: dict[str, dict[str, Figures]] | None = None):
    """(rows, agreement, results) of the core `suites` on the labelled models."""
    results = evaluate_models(cfg, suites, models, cache_dir, progress) if suites else {}
    rows: list[IndependentRow] = []
    agreement: list[Agreement] = []
    for suite in suites:
        per_label = by_suite(results, suite.name)
        rows += rows_from_results(suite.name, per_label, (in_distribution or {}).get(suite.name))
        agreement += agreement_from_results(per_label)
    return rows, agreement, results


def run_independent(cfg, run_dir: str | os.PathLike, model: str, start_model: str | None, default_suites: list[str],
                    progress: bool = True, extra_rows: list[IndependentRow] | None = None,
                    extra_agreement: list[Agreement] | None = None,
                    in_distribution: dict[str, dict[str, Figures]] | None = None) -> Path | None:
    """Evaluate and write independent.json (and independent_samples.json, the answers judged); None when
    `cfg.enabled` is false. `start_model` None: the stage started from nothing comparable (no `before`)."""
    if not cfg.enabled:
        return None
    models = {"base": cfg.base_model, "before": start_model, "after": model}
    rows, agreement, results = suite_rows(cfg, core_suites(cfg.suites_for(default_suites)), models,
                                          cache_dir_for(cfg, run_dir), progress, in_distribution)
    rows += extra_rows or []
    agreement += extra_agreement or []
    path = write_independent(run_dir, rows, agreement, model, start_model or "-")
    write_samples(Path(run_dir), results)
    from chatalign.evaluation.table import format_rows

    log.info("independent evaluation (%s):\n%s", path, format_rows(rows))
    return path


def write_samples(run_dir: Path, results: dict[str, dict[str, dict]]) -> None:
    from chatalign.runs import write_json_atomic

    write_json_atomic(run_dir / SAMPLES_FILE, {
        "seconds": seconds_table(results),
        "models": {label: {suite: {"model": r.get("model"), "samples": r.get("samples", [])}
                           for suite, r in per_suite.items() if r} for label, per_suite in results.items()}})
