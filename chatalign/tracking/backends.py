"""One adapter per experiment tracker, each through the tracker's own public API: `start` opens a run with the
run's manifest (resolved config, input hashes, parent runs) as its config, `log` sends the numbers of one
metrics record at its step, `summary` the run's final metrics, `close` ends the run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def numbers(record: dict, prefix: str = "") -> dict[str, float]:
    """The finite numeric values of a (nested) record, keys joined with '/'; text, lists and None left out."""
    out: dict[str, float] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(numbers(value, f"{name}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = float(value)
    return out


def flat(config: Any, prefix: str = "") -> dict[str, str]:
    """Dotted keys -> text of every scalar in a nested config (lists as JSON)."""
    if not isinstance(config, dict):
        return {prefix.rstrip("."): json.dumps(config, default=str) if isinstance(config, list) else str(config)}
    out: dict[str, str] = {}
    for key, value in config.items():
        out.update(flat(value, f"{prefix}{key}."))
    return out


class Tracker:
    """What every adapter shares: a run's final metrics go in as one more logged step under `final/` (W&B
    has a run summary of its own and overrides this)."""

    def log(self, values: dict[str, float], step: int) -> None:
        raise NotImplementedError

    def summary(self, values: dict[str, float], step: int) -> None:
        self.log({f"final/{k}": v for k, v in values.items()}, step)


class TensorBoardTracker(Tracker):
    def __init__(self, run_path: Path, name: str, group: str | None, project: str, config: dict, log_dir: str | None):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir or run_path / "tensorboard"))
        self.writer.add_text("config", "```json\n" + json.dumps(config, indent=1, default=str) + "\n```")

    def log(self, values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def close(self, failed: bool) -> None:
        self.writer.close()


class WandbTracker(Tracker):
    def __init__(self, run_path: Path, name: str, group: str | None, project: str, config: dict, log_dir: str | None):
        import wandb

        # WANDB_MODE (online, offline, disabled), WANDB_DIR and the API key come from the environment as usual
        self.run = wandb.init(project=project, name=name, group=group, config=config, dir=str(run_path),
                              settings=wandb.Settings(silent=True, console="off"))

    def log(self, values: dict[str, float], step: int) -> None:
        self.run.log(values, step=step)

    def summary(self, values: dict[str, float], step: int) -> None:
        self.run.summary.update(values)

    def close(self, failed: bool) -> None:
        self.run.finish(exit_code=1 if failed else 0)


class MlflowTracker(Tracker):
    def __init__(self, run_path: Path, name: str, group: str | None, project: str, config: dict, log_dir: str | None):
        import mlflow

        # MLFLOW_TRACKING_URI picks the server or store (default ./mlruns)
        self.mlflow = mlflow
        mlflow.set_experiment(project)
        tags = {"chatalign.run_dir": str(run_path), **({"chatalign.group": group} if group else {})}
        self.run = mlflow.start_run(run_name=name, tags=tags)
        params = {k: v[:500] for k, v in flat(config.get("config", {})).items()}
        items = sorted(params.items())
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per call
            mlflow.log_params(dict(items[i:i + 100]))
        mlflow.log_dict(config, "manifest.json")

    def log(self, values: dict[str, float], step: int) -> None:
        self.mlflow.log_metrics({k.replace("/", "."): v for k, v in values.items()}, step=step)

    def close(self, failed: bool) -> None:
        self.mlflow.end_run(status="FAILED" if failed else "FINISHED")


class TrackioTracker(Tracker):
    def __init__(self, run_path: Path, name: str, group: str | None, project: str, config: dict, log_dir: str | None):
        import trackio

        # TRACKIO_DIR picks the local store (default ~/.cache/huggingface/trackio); space_id stays unset: local only
        self.trackio = trackio
        self.run = trackio.init(project=project, name=name, group=group, config=config, embed=False,
                                auto_log_gpu=False, auto_log_cpu=False)

    def log(self, values: dict[str, float], step: int) -> None:
        self.trackio.log(values, step=step)

    def close(self, failed: bool) -> None:
        self.trackio.finish()


BACKENDS = {"tensorboard": TensorBoardTracker, "wandb": WandbTracker, "mlflow": MlflowTracker,
            "trackio": TrackioTracker}
