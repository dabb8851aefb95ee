"""`chatalign plan` on a pipeline recipe: every enabled step planned as the pipeline would run it.

Each step's recipe gets the pipeline's overrides (data keys, `${runs.X}` run directories); a step that reads an
earlier step's run directory gets that step's model shape, so nothing needs to exist on disk.
"""

from __future__ import annotations

from pathlib import Path

from chatalign.pipeline.config import load_pipeline
from chatalign.plan.memory import GiB
from chatalign.plan.recipe import PlanInputs
from chatalign.plan.report import make_plan, render


def make_pipeline_plan(path: Path, overrides: list[str], gpus: int, gpu_memory: int, headroom: float,
                       prompt_tokens: int, model_config: str | None) -> dict:
    cfg = load_pipeline(path, overrides)
    known: dict = {}
    steps = []
    for step in cfg.steps:
        if not step.enabled:
            continue
        inp = PlanInputs(Path(step.recipe), [], prompt_tokens, model_config, known, values=cfg.expand(step))
        result = make_plan(inp, gpus, gpu_memory, headroom)
        known[str(cfg.step_dir(step.name).resolve())] = result.pop("_output_shape")
        steps.append({"step": step.name, **result})
    need = [s["min_gpus"] for s in steps]
    return {"recipe": str(path), "stage": "pipeline", "gpus": gpus, "gpu_memory_bytes": gpu_memory,
            "steps": steps, "fits": all(s["fits"] for s in steps),
            "min_gpus": None if None in need else max(need)}


def render_pipeline(r: dict) -> str:
    lines = []
    for s in r["steps"]:
        lines += [f"=== step {s['step']}", render(s), ""]
    lines.append(f"pipeline {r['recipe']} on {r['gpus']} x {r['gpu_memory_bytes'] / GiB:.0f} GiB:")
    lines.append(f"  {'step':<16} {'stage':<7} {'peak GiB/GPU':>12}  {'peak phase':<16} {'fits':<5} min GPUs")
    for s in r["steps"]:
        lines.append(f"  {s['step']:<16} {s['stage']:<7} {s['peak_bytes'] / GiB:12.1f}  {s['peak_phase']:<16} "
                     f"{'yes' if s['fits'] else 'NO':<5} {s['min_gpus'] if s['min_gpus'] is not None else '-'}")
    mg = r["min_gpus"]
    lines.append(f"every step fits: {'yes' if r['fits'] else 'no'}; minimum GPUs for all steps: "
                 f"{mg if mg is not None else 'none with these settings (see the steps above)'}")
    return "\n".join(lines)
