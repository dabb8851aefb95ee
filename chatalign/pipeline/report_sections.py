"""What the pipeline report's sections are built from: each step's run directory (StepInfo), the pipeline
(Ctx), and the blocks every section uses (not_run, before_after, pct, num; the steps table).

A section is a list of blocks that chatalign.pipeline.report renders twice (markdown and HTML):
  ("h", level, text) | ("p", text) | ("table", columns, rows) | ("img", file name, alt) | ("list", [(depth, text)])
Each stage builds its own section (`Stage.report_section`, in its pipeline_section.py) from the files its run
directories hold (manifest.json, metrics.jsonl, eval*.json). A step that is disabled, missing or unfinished
gives a one-line "stage not run" section.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class StepInfo:
    name: str
    stage: str
    dir: Path
    key: str | None
    enabled: bool
    manifest: dict | None = None

    @property
    def finished(self) -> bool:
        return bool(self.manifest and self.manifest.get("status") == "finished")

    @property
    def metrics(self) -> dict:
        return (self.manifest or {}).get("metrics") or {}

    @property
    def config(self) -> dict:
        return (self.manifest or {}).get("config") or {}

    def json(self, name: str) -> dict | None:
        p = self.dir / name
        try:
            return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None
        except (OSError, json.JSONDecodeError):
            return None

    def records(self) -> list[dict]:
        p = self.dir / "metrics.jsonl"
        out = []
        if p.is_file():
            for line in p.read_text(encoding="utf-8").splitlines():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut by a kill
        return out


@dataclass
class Ctx:
    root: Path
    steps: list[StepInfo]
    state: dict = field(default_factory=dict)

    def of(self, stage: str) -> list[StepInfo]:
        return [s for s in self.steps if s.stage == stage]

    def done(self, stage: str) -> list[StepInfo]:
        return [s for s in self.of(stage) if s.enabled and s.finished]


def not_run(ctx: Ctx, stage: str, what: str) -> list:
    steps = ctx.of(stage)
    if not steps:
        why = f"no {stage} step in this pipeline"
    elif not any(s.enabled for s in steps):
        why = f"step {', '.join(s.name for s in steps)} is disabled"
    else:
        why = f"step {', '.join(s.name for s in steps if s.enabled)} has not finished"
    return [("p", f"Stage not run ({why}): no {what}.")]


def before_after(ctx: Ctx, stage: str, heading: str, what: str, labels: tuple[str, str], no_eval: str,
                 usable=bool) -> tuple[list, StepInfo | None, dict]:
    """The opening of a section on the last finished `stage` step's eval_before.json and eval_after.json:
    blocks (the heading, then a "not run" line where no step finished, or "`step` ran <no_eval>" where
    neither file is `usable`), the step, and the usable results under `labels` (before, after)."""
    blocks: list = [("h", 2, heading)]
    done = ctx.done(stage)
    if not done:
        return blocks + not_run(ctx, stage, what), None, {}
    step = done[-1]
    results = {label: r for label, name in zip(labels, ("eval_before.json", "eval_after.json"), strict=True)
               if (r := step.json(name)) and usable(r)}
    if not results:
        blocks.append(("p", f"`{step.name}` ran {no_eval}."))
    return blocks, step, results


def pct(v) -> str:
    if v is None or v != v:  # NaN: a win rate with no wins and no losses
        return "-"
    return f"{100 * v:.1f}%"


def num(v, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def steps_table(ctx: Ctx, seconds: dict[str, float | None]) -> list:
    rows = []
    for s in ctx.steps:
        status = "disabled" if not s.enabled else (s.manifest or {}).get("status", "not run")
        rows.append({"step": s.name, "stage": s.stage, "status": status, "key": s.key or "-",
                     "config hash": (s.manifest or {}).get("config_hash", "-"),
                     "time": "-" if seconds.get(s.name) is None else f"{seconds[s.name]:.0f} s",
                     "run directory": f"`{rel(s.dir, ctx.root)}`"})
    return [("table", ["step", "stage", "status", "key", "config hash", "time", "run directory"], rows)]


def rel(path: str | Path, root: Path) -> str:
    p = Path(path)
    try:
        return str(p.resolve().relative_to(root))
    except ValueError:
        return str(p)

