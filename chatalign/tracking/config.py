"""The recipe keys of experiment tracking, shared by every stage and the pipeline: `report_to` (which trackers,
none by default) and `tracking` (project, group, where local stores go)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from chatalign.config import StrictModel

Tracker = Literal["tensorboard", "wandb", "mlflow", "trackio"]
# the package each tracker needs (checked when the recipe is read, before any heavy work)
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "trackio": "trackio"}


class TrackingConfig(StrictModel):
    project: str = Field("chatalign", description="W&B / trackio project, MLflow experiment")
    group: str | None = Field(None, description="links the runs of one pipeline (the pipeline sets its name)")
    run_name: str | None = Field(None, description="default: the run directory's name")
    tensorboard_dir: str | None = Field(None, description="default: <output_dir>/tensorboard")


class Tracked(StrictModel):
    """Mixed into every stage config: `report_to: [tensorboard, wandb, mlflow, trackio]` (any subset)."""

    report_to: list[Tracker] = Field(default_factory=list, description="experiment trackers fed every logged "
                                     "metric, with the resolved config and lineage as the run's config")
    tracking: TrackingConfig = TrackingConfig()

    @field_validator("report_to")
    @classmethod
    def _installed(cls, names: list[str]) -> list[str]:
        missing = [n for n in dict.fromkeys(names) if importlib.util.find_spec(PACKAGES[n]) is None]
        if missing:
            raise ValueError(f"{', '.join(missing)} not installed: pip install {' '.join(PACKAGES[n] for n in missing)}"
                             " (or pip install 'chatalign[tracking]')")
        return list(dict.fromkeys(names))


def inner_tracking(cfg: Tracked, output_dir: str, part: str) -> dict:
    """`report_to` and `tracking` for a run a stage starts inside its own (the RS fine-tune, GAtt's and the
    safety step's SFT): the same trackers, the run named after the stage's run and the part."""
    name = cfg.tracking.run_name or Path(output_dir).name
    return {"report_to": list(cfg.report_to), "tracking": cfg.tracking.model_copy(update={"run_name": f"{name}-{part}"})}


# recipe keys that change where a run is reported, never what it computes (left out of pipeline step keys)
TRACKING_KEYS = frozenset({"report_to", "tracking"})
