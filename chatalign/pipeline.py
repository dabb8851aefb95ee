"""`chatalign pipeline`: run stage steps in order, skipping the up-to-date ones, resuming the broken one.

A step is up to date when its run directory finished with the same key: the hash of its resolved config,
the content of the data files it names and the keys of the earlier steps it reads. Change a stage's config
or point a data key at another file and that step re-runs, and so does every step that reads it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path

from chatalign.config import load_config
from chatalign.errors import UserError
from chatalign.pipeline_config import REF, STAGE_COMMANDS, PipelineConfig
from chatalign.runs import file_sha256, now, write_json_atomic
from chatalign.stages import config_class

log = logging.getLogger(__name__)


def override_args(values: dict) -> list[str]:
    # JSON is valid YAML flow syntax, so every value survives the override parser unchanged
    return [f"{k}={json.dumps(v)}" for k, v in values.items()]


def plan_steps(cfg: PipelineConfig) -> list[dict]:
    """Validate every step's config up front (before any heavy work) and compute its key."""
    keys: dict[str, str] = {}
    plan = []
    data_hashes: dict[str, str] = {}
    for step in cfg.steps:
        if not step.enabled:
            continue
        values = cfg.expand(step)
        stage_cfg = load_config(config_class(step.stage), step.recipe, override_args(values))
        h = hashlib.sha256(json.dumps(stage_cfg.model_dump(mode="json"), sort_keys=True).encode())
        for value in step.set.values():
            for kind, ref in REF.findall(str(value)):
                if kind == "runs":
                    if ref not in keys:
                        raise UserError(f"step {step.name}: reads {ref!r}, which is disabled or not earlier")
                    h.update(keys[ref].encode())
                else:
                    path = Path(cfg.data[ref])
                    if not path.exists():
                        raise UserError(f"data.{ref}: file not found: {path}")
                    data_hashes.setdefault(ref, file_sha256(path))
                    h.update(data_hashes[ref].encode())
        keys[step.name] = h.hexdigest()[:16]
        plan.append({"step": step, "args": override_args(values), "key": keys[step.name],
                     "dir": cfg.step_dir(step.name)})
    return plan


class PipelineState:
    def __init__(self, root: Path):
        self.path = root / "pipeline_state.json"
        self.data = json.loads(self.path.read_text()) if self.path.is_file() else {"steps": {}}

    def get(self, name: str) -> dict:
        return self.data["steps"].get(name, {})

    def set(self, name: str, **fields) -> None:
        self.data["steps"].setdefault(name, {}).update(fields)
        write_json_atomic(self.path, self.data)


def step_status(item: dict, state: PipelineState) -> str:
    rec = state.get(item["step"].name)
    manifest = item["dir"] / "manifest.json"
    finished = manifest.is_file() and json.loads(manifest.read_text()).get("status") == "finished"
    if rec.get("key") == item["key"] and finished:
        return "up to date"
    if rec.get("key") == item["key"] and item["dir"].exists():
        return "resume"
    if item["dir"].exists():
        return "changed"
    return "new"


def run_pipeline(cfg: PipelineConfig, progress: bool = True, dry_run: bool = False) -> dict:
    from chatalign import cli
    from chatalign.runs import RunDir

    root = Path(cfg.output_dir).resolve()
    plan = plan_steps(cfg)
    state = PipelineState(root)
    statuses = [step_status(item, state) for item in plan]
    for i, (item, status) in enumerate(zip(plan, statuses, strict=True), 1):
        print(f"[{i}/{len(plan)}] {item['step'].name:<18} {item['step'].stage:<7} {status}", flush=True)
    if dry_run:
        return {"steps": [{"name": p["step"].name, "status": s} for p, s in zip(plan, statuses, strict=True)]}
    lock = RunDir(root, "pipeline")
    lock.lock()
    durations: dict[str, float] = {}
    try:
        for i, item in enumerate(plan, 1):
            step = item["step"]
            status = step_status(item, state)
            if status == "up to date":
                continue
            if status == "changed":  # keep the old run, out of the way: nothing is deleted
                aside = root / ".superseded" / f"{step.name}-{time.strftime('%Y%m%d-%H%M%S')}"
                aside.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(item["dir"]), aside)
                log.info("step %s changed: previous run moved to %s", step.name, aside)
            state.set(step.name, key=item["key"], stage=step.stage, status="running", started_at=now())
            remaining = [p["step"].name for p in plan[i:]]
            print(f"\n=== [{i}/{len(plan)}] {step.name} ({step.stage}){' (resuming)' if status == 'resume' else ''}"
                  f" — then: {', '.join(remaining) or 'done'}", flush=True)
            argv = [*STAGE_COMMANDS[step.stage], "--config", step.recipe, *item["args"]]
            if status == "resume":
                argv.append("--resume")
            if not progress:
                argv.append("--no-progress")
            t0 = time.perf_counter()
            rc = cli.main(argv)
            durations[step.name] = time.perf_counter() - t0
            if rc != 0:
                state.set(step.name, status="failed", exit_code=rc)
                raise UserError(f"pipeline step {step.name} failed (exit code {rc}); finished steps are kept: "
                                f"fix the cause and run the same command again to continue")
            state.set(step.name, status="finished", finished_at=now(), seconds=round(durations[step.name], 1))
        if cfg.report:
            from chatalign.pipeline_report import write_pipeline_report

            write_pipeline_report(cfg, plan, root)
    finally:
        lock.unlock()
    return {"steps": {p["step"].name: state.get(p["step"].name) for p in plan}}
