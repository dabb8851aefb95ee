"""Experiment tracking: the runs a recipe's `report_to` names (TensorBoard, W&B, MLflow, trackio), fed from the
one place metrics are logged (`RunDir.log_metrics`), opened by `RunDir.start` with the manifest (resolved
config, input hashes, parent runs) as the run's config, closed by `RunDir.finish` (or when the run stops early).
Trackers get copies of the numbers; `metrics.jsonl` stays the record the reports and resumption read."""

from __future__ import annotations

import logging
from pathlib import Path

from chatalign.errors import RunError

log = logging.getLogger(__name__)


class Trackers:
    """The open tracker runs of one run directory (none when the recipe's `report_to` is empty)."""

    def __init__(self, open_runs: list):
        self.runs = open_runs
        self.last_step = 0

    def log(self, record: dict) -> None:
        from chatalign.tracking.backends import numbers

        step = int(record.get("step", record.get("iteration", self.last_step + 1)))
        self.last_step = max(self.last_step, step)
        values = numbers({k: v for k, v in record.items() if k not in ("step", "iteration")})
        for run in self.runs:
            run.log(values, step)

    def finish(self, metrics: dict, failed: bool = False) -> None:
        from chatalign.tracking.backends import numbers

        runs, self.runs = self.runs, []  # closed once, whatever happens next
        for run in runs:
            if metrics:
                run.summary(numbers(metrics), self.last_step)
            run.close(failed)


def open_trackers(manifest: dict, run_path: Path) -> Trackers:
    """Tracker runs for the manifest's config (`report_to`, `tracking`); an empty Trackers when there are none."""
    from chatalign.tracking.backends import BACKENDS

    config = manifest.get("config") or {}
    names = config.get("report_to") or []
    if not names:
        return Trackers([])
    t = config.get("tracking") or {}
    name = t.get("run_name") or run_path.name
    runs = []
    for tracker in names:
        try:
            runs.append(BACKENDS[tracker](run_path, name, t.get("group"), t.get("project", "chatalign"), manifest,
                                          t.get("tensorboard_dir")))
        except Exception as exc:  # the tracker's own error (no server, no login): one line, and the others closed
            Trackers(runs).finish({}, failed=True)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise RunError(f"report_to {tracker}: could not start a run: {first}") from None
        log.info("tracking: %s run %r (project %s%s)", tracker, name, t.get("project", "chatalign"),
                 f", group {t['group']}" if t.get("group") else "")
    return Trackers(runs)
