"""`chatalign pipeline`: run stage steps in order, skipping the up-to-date ones, resuming the broken one.

A step is up to date when its run directory finished with the same key: the hash of its resolved config,
the content of the data files it reads (the `${data.X}` it names and any other file its config names outside
the pipeline's output) and the keys of the earlier steps it reads. Change a stage's config or point a data key
at another file and that step re-runs, and so does every step that reads it, and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path

from chatalign import registry
from chatalign.config import load_config
from chatalign.errors import UserError, print_error
from chatalign.pipeline.config import PipelineConfig, walk_strings
from chatalign.runs import RunDir, input_sha256, is_hub_spec, now, write_json_atomic
from chatalign.tracking.config import TRACKING_KEYS

log = logging.getLogger(__name__)


def _config_files(config: dict, root: Path) -> list[Path | str]:
    """Files a resolved stage config names (data the recipe itself points at), outside the pipeline output, and
    the Hub dataset splits it names."""
    out: list[Path | str] = []
    for text in walk_strings(config):
        if is_hub_spec(text):
            out.append(text)
            continue
        if "/" not in text or len(text) > 4096:
            continue
        p = Path(text)
        if p.is_absolute() and p.is_file() and root not in p.parents:
            out.append(p)
    return sorted(set(out), key=str)


def plan_steps(cfg: PipelineConfig, missing_ok: bool = False) -> list[dict]:
    """Validate every step's config up front (before any heavy work) and compute its key.

    Missing data files raise one error naming all of them, unless `missing_ok` (dry runs of a recipe whose
    data is still to be written): then each item lists them under `missing`.
    """
    root = Path(cfg.output_dir).resolve()
    keys: dict[str, str] = {}
    hashes: dict[str, str] = {}
    plan, missing_all = [], []

    def content(path: Path | str) -> str:
        if str(path) not in hashes:
            hashes[str(path)] = input_sha256(path)
        return hashes[str(path)]

    for step in cfg.steps:
        if not step.enabled:
            continue
        values = cfg.expand(step)
        stage_cfg = load_config(registry.get(step.stage).config_class(), step.recipe, values=values)
        # where a step reports (trackers) is not what it computes: left out of its key
        dumped = stage_cfg.model_dump(mode="json", exclude=TRACKING_KEYS)
        h = hashlib.sha256(json.dumps(dumped, sort_keys=True).encode())
        data_keys, upstream = cfg.references(step)
        for ref in upstream:
            if ref not in keys:
                raise UserError(f"step {step.name}: reads {ref!r}, which is disabled or not an earlier step")
            h.update(keys[ref].encode())
        missing = []
        for ref in data_keys:
            path = cfg.data[ref] if is_hub_spec(cfg.data[ref]) else Path(cfg.data[ref])
            if isinstance(path, str) or path.exists():
                h.update(f"{ref}:{content(path)}".encode())
            else:
                missing.append(f"data.{ref}: {path}")
        for path in _config_files(dumped, root):
            h.update(f"{path}:{content(path)}".encode())
        missing_all += [m for m in missing if m not in missing_all]
        keys[step.name] = h.hexdigest()[:16]
        plan.append({"step": step, "values": values, "config": stage_cfg, "key": keys[step.name],
                     "dir": cfg.step_dir(step.name), "missing": missing, "upstream": upstream})
    if missing_all and not missing_ok:
        raise UserError("data files not found:\n  " + "\n  ".join(missing_all))
    return plan


class PipelineState:
    """pipeline_state.json: per step its key, status, start/finish times and seconds (the ETA's source)."""

    def __init__(self, root: Path):
        self.path = root / "pipeline_state.json"
        self.data = json.loads(self.path.read_text()) if self.path.is_file() else {"steps": {}}

    def get(self, name: str) -> dict:
        return self.data["steps"].get(name, {})

    def set(self, name: str, **fields) -> None:
        self.data["steps"].setdefault(name, {}).update(fields)
        write_json_atomic(self.path, self.data)


def step_status(item: dict, state: PipelineState) -> str:
    if item.get("missing"):
        return "missing data"
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


def fmt_seconds(s: float) -> str:
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def eta(todo: list[dict], state: PipelineState) -> str:
    """Time left for the steps still to run, from the seconds their earlier runs took (pipeline_state.json)."""
    known = [state.get(p["step"].name).get("seconds") for p in todo]
    total = sum(s for s in known if s is not None)
    unknown = sum(s is None for s in known)
    if unknown == len(known):
        return "ETA unknown (no earlier run of these steps recorded)"
    if unknown:
        return f"ETA > {fmt_seconds(total)} ({unknown} of {len(known)} steps never ran before)"
    return f"ETA {fmt_seconds(total)}"


def _print_plan(plan: list[dict], statuses: list[str], state: PipelineState) -> None:
    for i, (item, status) in enumerate(zip(plan, statuses, strict=True), 1):
        last = state.get(item["step"].name).get("seconds")
        took = f"  (last run {fmt_seconds(last)})" if last is not None else ""
        print(f"[{i}/{len(plan)}] {item['step'].name:<18} {item['step'].stage:<7} {item['key']}  {status}{took}",
              flush=True)
        if item["missing"]:
            print(f"      needs {', '.join(m.split(':')[0] for m in item['missing'])}", flush=True)


def run_pipeline(cfg: PipelineConfig, progress: bool = True, dry_run: bool = False) -> dict:
    root = Path(cfg.output_dir).resolve()
    plan = plan_steps(cfg, missing_ok=dry_run)
    state = PipelineState(root)
    statuses = [step_status(item, state) for item in plan]
    _print_plan(plan, statuses, state)
    if dry_run:
        return _dry_run_summary(plan, statuses, state)
    lock = RunDir(root, "pipeline")
    lock.lock()
    t_start = time.perf_counter()
    try:
        for i, item in enumerate(plan, 1):
            status = step_status(item, state)
            if status == "up to date":
                continue
            if status == "changed":  # keep the old run, out of the way: nothing is deleted
                _move_aside(item, root)
            remaining = [p for p in plan[i - 1:] if step_status(p, state) != "up to date"]
            step = item["step"]
            print(f"\n=== [{i}/{len(plan)}] {step.stage}: {step.name}{' (resuming)' if status == 'resume' else ''}"
                  f" | elapsed {fmt_seconds(time.perf_counter() - t_start)} | {eta(remaining, state)}"
                  f" | then: {', '.join(p['step'].name for p in remaining[1:]) or 'report'}", flush=True)
            _run_step(item, state, resume=status == "resume", progress=progress)
        if cfg.report:
            from chatalign.pipeline.report import write_pipeline_report

            paths = write_pipeline_report(cfg, plan, root)
            print(f"report: {', '.join(str(p) for p in paths)}", flush=True)
    finally:
        lock.unlock()
    return {"steps": {p["step"].name: state.get(p["step"].name) for p in plan}}


def _dry_run_summary(plan: list[dict], statuses: list[str], state: PipelineState) -> dict:
    todo = [p for p, s in zip(plan, statuses, strict=True) if s != "up to date"]
    missing = sorted({m for p in plan for m in p["missing"]})
    print(f"dry run: {len(plan)} step configs valid; {len(todo)} step(s) would run; {eta(todo, state)}"
          + (f"; {len(missing)} data file(s) to provide first:" if missing else ""))
    for m in missing:
        print(f"  {m}")
    return {"steps": [{"name": p["step"].name, "status": s, "key": p["key"]}
                      for p, s in zip(plan, statuses, strict=True)]}


def rebuild_report(cfg: PipelineConfig) -> list[Path]:
    """report.md and report.html from the step directories as they are, running nothing."""
    from chatalign.pipeline.report import write_pipeline_report

    root = Path(cfg.output_dir).resolve()
    if not (root / "pipeline_state.json").is_file():
        raise UserError(f"{root}: no pipeline has run here yet (no pipeline_state.json); nothing to report")
    return write_pipeline_report(cfg, plan_steps(cfg, missing_ok=True), root)


def _move_aside(item: dict, root: Path) -> None:
    step = item["step"]
    aside = root / ".superseded" / f"{step.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    aside.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(item["dir"]), aside)
    log.info("step %s changed: previous run moved to %s", step.name, aside)


def _run_step(item: dict, state: PipelineState, resume: bool, progress: bool) -> None:
    """Run one step's stage on the config `plan_steps` validated; record it in pipeline_state.json. A step
    that fails is marked failed; a UserError or an interrupt is reported as `chatalign <stage>` would."""
    step, cfg = item["step"], item["config"]
    stage = registry.get(step.stage)
    state.set(step.name, key=item["key"], stage=step.stage, status="running", started_at=now())
    t0 = time.perf_counter()
    try:
        stage.check_models(cfg)
        summary = stage.run(cfg, resume=resume, progress=progress)
    except (UserError, KeyboardInterrupt) as exc:
        rc = print_error(exc)
        state.set(step.name, status="failed", exit_code=rc)
        raise StepFailed(step.name, rc) from None
    except BaseException:
        state.set(step.name, status="failed")
        raise
    seconds = time.perf_counter() - t0
    stage.print_summary(cfg, summary)
    state.set(step.name, status="finished", finished_at=now(), seconds=round(seconds, 1))
    print(f"=== {step.name} finished in {fmt_seconds(seconds)}", flush=True)


class StepFailed(UserError):
    """A step stopped: interrupted (exit code 130, resumable) or failed (exit code 2)."""

    def __init__(self, name: str, rc: int):
        self.exit_code = 130 if rc == 130 else 2
        how = "interrupted" if rc == 130 else f"failed (exit code {rc})"
        super().__init__(f"pipeline step {name} {how}; finished steps are kept: "
                         + ("run the same command again to resume it" if rc == 130 else
                            "fix the cause and run the same command again to continue"))
