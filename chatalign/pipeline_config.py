"""The pipeline recipe: an ordered list of stage steps, each a stage recipe plus overrides.

Overrides may reference `${data.KEY}` (a path from the pipeline's `data` section, resolved against the
pipeline file) and `${runs.STEP}` (the run directory of an earlier step). Nothing else is expanded.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from chatalign.config import StrictModel, resolve_path

REF = re.compile(r"\$\{(data|runs)\.([A-Za-z0-9_\-]+)\}")
STAGE_COMMANDS = {"sft": ["sft"], "reward": ["reward"], "rlhf": ["rlhf", "round"], "gatt": ["gatt"],
                  "safety": ["safety"]}


class PipelineStep(StrictModel):
    name: str = Field(..., pattern=r"^[A-Za-z0-9_\-]+$")
    stage: Literal["sft", "reward", "rlhf", "gatt", "safety"]
    recipe: str
    set: dict[str, Any] = {}
    enabled: bool = True


class PipelineConfig(StrictModel):
    stage: Literal["pipeline"] = "pipeline"
    output_dir: str = "runs/pipeline"
    data: dict[str, str] = {}
    steps: list[PipelineStep]
    report: bool = True

    @model_validator(mode="after")
    def _check(self):
        seen: set[str] = set()
        for step in self.steps:
            if step.name in seen:
                raise ValueError(f"steps: duplicate step name {step.name!r}")
            for key, value in step.set.items():
                for kind, ref in REF.findall(str(value)):
                    if kind == "data" and ref not in self.data:
                        raise ValueError(f"steps.{step.name}.set.{key}: unknown data key {ref!r}")
                    if kind == "runs" and ref not in seen:
                        raise ValueError(f"steps.{step.name}.set.{key}: {ref!r} is not an earlier step")
            seen.add(step.name)
        return self

    def resolve_paths(self, base: Path) -> None:
        self.__dict__["data"] = {k: str(resolve_path(v, base).resolve()) for k, v in self.data.items()}
        for step in self.steps:
            step.__dict__["recipe"] = str(resolve_path(step.recipe, base).resolve())

    def step_dir(self, name: str) -> Path:
        return Path(self.output_dir).resolve() / name

    def expand(self, step: PipelineStep) -> dict[str, Any]:
        """The step's overrides with references replaced by absolute paths."""

        def sub(value):
            if not isinstance(value, str):
                return value
            return REF.sub(lambda m: self.data[m.group(2)] if m.group(1) == "data"
                           else str(self.step_dir(m.group(2))), value)

        out = {k: sub(v) for k, v in step.set.items()}
        out["output_dir"] = str(self.step_dir(step.name))
        return out
