"""The pipeline recipe: an ordered list of stage steps, each a stage recipe plus overrides.

Overrides may reference `${data.KEY}` (a path from the pipeline's `data` section, resolved against the
pipeline file), `${runs.STEP}` (the run directory of an earlier step) and `${last.STAGE}` (the run directory
of the latest enabled earlier step of that stage: GAtt reads `${last.rlhf}`, so enabling a second RLHF round
needs no other edit). References may sit anywhere inside a value (lists of sources included). Nothing else
is expanded.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from chatalign import registry
from chatalign.config import AbsoluteRecipePath, RunPath, StrictModel, load_config, parse_override
from chatalign.errors import ConfigError
from chatalign.rollout.generation_config import GenerationConfig
from chatalign.tracking.config import Tracked

log = logging.getLogger(__name__)

REF = re.compile(r"\$\{(data|runs|last)\.([A-Za-z0-9_\-]+)\}")


def walk_strings(value: Any):
    """Every string inside a value (nested lists and dicts included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from walk_strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from walk_strings(v)


def map_strings(value: Any, fn):
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [map_strings(v, fn) for v in value]
    return value


class PipelineStep(StrictModel):
    name: str = Field(..., pattern=r"^[A-Za-z0-9_\-]+$")
    stage: str = Field(..., description="a stage's name (`chatalign --help` lists them)")
    recipe: AbsoluteRecipePath
    set: dict[str, Any] = {}
    enabled: bool = True

    @field_validator("stage")
    @classmethod
    def _known_stage(cls, name: str) -> str:
        if name not in registry.names():
            raise PydanticCustomError("unknown_stage", "unknown stage {name} (one of {known})",
                                      {"name": repr(name), "known": ", ".join(registry.names())})
        return name


class PipelineConfig(Tracked):
    stage: Literal["pipeline"] = "pipeline"
    output_dir: RunPath = "runs/pipeline"
    data: dict[str, AbsoluteRecipePath] = {}
    steps: list[PipelineStep] = Field(..., min_length=1)
    report: bool = True
    report_examples: int = Field(4, ge=0, le=8, description="held-out prompts shown side by side in the report")
    generation: GenerationConfig | None = Field(
        None, description="the generation backend of every step whose stage generates (a `generation:` section "
        "like the RLHF round's), unless the step sets generation.* itself; None: each recipe's own")

    @model_validator(mode="after")
    def _check(self):
        seen: set[str] = set()
        for i, step in enumerate(self.steps):
            if step.name in seen:
                raise ValueError(f"steps: duplicate step name {step.name!r}")
            for key, value in step.set.items():
                for text in walk_strings(value):
                    for kind, ref in REF.findall(text):
                        where = f"steps.{step.name}.set.{key}"
                        if kind == "data" and ref not in self.data:
                            raise ValueError(f"{where}: unknown data key {ref!r}")
                        if kind == "runs" and ref not in seen:
                            raise ValueError(f"{where}: {ref!r} is not an earlier step")
                        if kind == "last" and step.enabled and self.last_step(ref, i) is None:
                            raise ValueError(f"{where}: no enabled {ref} step before this one")
            seen.add(step.name)
        return self

    def data_keys_read(self) -> set[str]:
        """The data keys some step's overrides read (a disabled step's too: enabling it needs no other edit)."""
        return {ref for step in self.steps for value in step.set.values() for text in walk_strings(value)
                for kind, ref in REF.findall(text) if kind == "data"}

    def step_dir(self, name: str) -> Path:
        return Path(self.output_dir).resolve() / name

    def last_step(self, stage: str, before: int) -> str | None:
        """The name of the latest enabled step of `stage` before index `before`."""
        for step in reversed(self.steps[:before]):
            if step.enabled and step.stage == stage:
                return step.name
        return None

    def references(self, step: PipelineStep) -> tuple[list[str], list[str]]:
        """(data keys, earlier step names) that the step's overrides read, in order of first use."""
        index = self.steps.index(step)
        data: list[str] = []
        runs: list[str] = []
        for value in step.set.values():
            for text in walk_strings(value):
                for kind, ref in REF.findall(text):
                    if kind == "data":
                        data.append(ref)
                    else:
                        runs.append(ref if kind == "runs" else (self.last_step(ref, index) or f"<no {ref}>"))
        return list(dict.fromkeys(data)), list(dict.fromkeys(runs))

    def expand(self, step: PipelineStep) -> dict[str, Any]:
        """The step's overrides with references replaced by absolute paths."""
        index = self.steps.index(step)

        def one(m: re.Match) -> str:
            kind, ref = m.group(1), m.group(2)
            if kind == "data":
                return self.data[ref]
            return str(self.step_dir(ref if kind == "runs" else self.last_step(ref, index)))

        out = {k: map_strings(v, lambda s: REF.sub(one, s)) for k, v in step.set.items()}
        out["output_dir"] = str(self.step_dir(step.name))
        out.update(self.generation_overrides(step))
        if self.report_to:  # every step reports to the pipeline's trackers, its run named after the step
            out["report_to"] = list(self.report_to)
            group = self.tracking.group or Path(self.output_dir).resolve().name
            out["tracking"] = {**self.tracking.model_dump(), "group": group, "run_name": step.name}
        return out


    def generation_overrides(self, step: PipelineStep) -> dict[str, Any]:
        """The pipeline's `generation:` keys for a step whose stage config takes a GenerationConfig (or one that
        extends it), those the step does not set itself (a stage without one gets none)."""
        if self.generation is None or any(k == "generation" or k.startswith("generation.") for k in step.set):
            return {}
        field = registry.get(step.stage).config_class().model_fields.get("generation")
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, GenerationConfig)):
            return {}
        return {f"generation.{k}": v for k, v in self.generation.model_dump(exclude_unset=True).items()}


def load_pipeline(path: str | os.PathLike | None, overrides: list[str] | None = None) -> PipelineConfig:
    """The pipeline recipe with its overrides. A `data.KEY=...` override that no step reads is an error (a
    misspelt key would leave the user's data unused while every step looks up to date); a key of the file that
    no step reads is only a warning (a spare entry kept for later)."""
    step_switches, overrides = split_step_switches(overrides or [])
    cfg = load_config(PipelineConfig, path, overrides)
    if step_switches:
        cfg = switch_steps(cfg, step_switches, path)
    read = cfg.data_keys_read()
    for text in overrides or []:
        key, _ = parse_override(text)
        if key[0] == "data" and len(key) == 2 and key[1] not in read:
            near = difflib.get_close_matches(key[1], sorted(read), n=1)
            hint = f"did you mean data.{near[0]}?" if near else f"steps read: {', '.join(sorted(read)) or 'none'}"
            raise ConfigError(f"command line: data.{key[1]}: no step reads this data key ({hint})")
    for key in sorted(set(cfg.data) - read):
        log.warning("%s: data.%s: no step reads this data key: the file is not used", path, key)
    return cfg


STEP_SWITCH = re.compile(r"^steps\.([A-Za-z0-9_\-]+)\.enabled=(.*)$")


def split_step_switches(overrides: list[str]) -> tuple[dict[str, bool], list[str]]:
    """`steps.NAME.enabled=true|false` (turn a step of the recipe on or off) apart from the other overrides."""
    switches, rest = {}, []
    for text in overrides:
        m = STEP_SWITCH.match(text.strip())
        if m is None:
            rest.append(text)
            continue
        _, value = parse_override(text)
        if not isinstance(value, bool):
            raise ConfigError(f"command line: steps.{m.group(1)}.enabled: true or false, not {m.group(2)!r}")
        switches[m.group(1)] = value
    return switches, rest


def switch_steps(cfg: PipelineConfig, switches: dict[str, bool], path) -> PipelineConfig:
    """The pipeline with steps turned on or off by name, validated again (an enabled step's references must
    resolve)."""
    from chatalign.config import validate

    names = [step.name for step in cfg.steps]
    for name in switches:
        if name not in names:
            near = difflib.get_close_matches(name, names, n=1)
            hint = f"did you mean {near[0]}?" if near else f"steps: {', '.join(names)}"
            raise ConfigError(f"command line: steps.{name}.enabled: no step named {name!r} ({hint})")
    data = cfg.model_dump(mode="json")
    for step in data["steps"]:
        step["enabled"] = switches.get(step["name"], step["enabled"])
    return validate(PipelineConfig, data, str(path), recipe_dir=Path(path).resolve().parent)
