"""`chatalign plan`: per-GPU memory of a stage recipe, with the arithmetic shown, the fit, and what to change."""

from __future__ import annotations

import re
from dataclasses import replace

from chatalign import registry
from chatalign.errors import UserError
from chatalign.plan.memory import GiB, Zero
from chatalign.plan.phases import StageSpec, advice, min_gpus, peak, plan
from chatalign.plan.recipe import PlanInputs, build_spec, load_stage

UNITS = {"": GiB, "g": GiB, "gb": GiB, "gib": GiB, "m": 2**20, "mb": 2**20, "mib": 2**20, "t": 2**40,
         "tb": 2**40, "tib": 2**40}


def parse_memory(text: str) -> int:
    """`80GB`, `80GiB`, `81920MiB`, `80` (GiB) -> bytes. A GPU sold as "80GB" has 80 GiB (nvidia-smi: 81920 MiB)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).lower() not in UNITS:
        raise UserError(f"--gpu-memory {text!r}: expected a size like 80GB, 40GiB or 24576MiB")
    return int(float(m.group(1)) * UNITS[m.group(2).lower()])


def _zero_text(z: Zero, ranks: int, distributed: bool) -> str:
    if not distributed:
        return "one process; every GPU that runs it holds all of it"
    if not z.enabled and ranks == 1:
        return "one process, no DeepSpeed (plain AdamW)"
    off = [f"{w} offload to CPU" for w, on in (("optimizer", z.offload_optimizer), ("parameter", z.offload_param))
           if on]
    return f"DeepSpeed ZeRO-{z.stage} over {ranks} ranks" + (f", {', '.join(off)}" if off else "")


def evaluate(spec: StageSpec, gpus: int, usable: float) -> dict:
    phases = plan(spec, gpus)
    out = []
    for ph_spec, ph in zip(spec.phases, phases, strict=True):
        out.append({
            "name": ph.name, "ranks": ph.ranks,
            "setup": _zero_text(ph_spec.zero, ph.ranks, ph_spec.distributed)
            + ("; frozen models partitioned (ZeRO-3 inference)" if ph_spec.frozen_sharded and ph.ranks > 1 else ""),
            "gpu_bytes": ph.gpu_bytes, "cpu_bytes": ph.cpu_bytes,
            "terms": [{"name": t.name, "bytes": t.bytes, "gib": round(t.bytes / GiB, 3), "formula": t.formula,
                       "device": t.device} for t in ph.terms]})
    worst = max(out, key=lambda p: p["gpu_bytes"])
    return {"phases": out, "peak_bytes": worst["gpu_bytes"], "peak_phase": worst["name"],
            "fits": worst["gpu_bytes"] <= usable, "min_gpus": min_gpus(spec, usable)}


def make_plan(inp: PlanInputs, gpus: int, gpu_memory: int, headroom: float = 0.1) -> dict:
    if gpus < 1:
        raise UserError("--gpus must be >= 1")
    if not 0 <= headroom < 1:
        raise UserError("--headroom is a fraction of GPU memory kept free, in [0, 1)")
    cfg = load_stage(inp)
    spec = replace(build_spec(cfg, inp.recipe, inp), gpu_memory=gpu_memory)
    usable = gpu_memory * (1 - headroom)
    result = {"recipe": str(inp.recipe), "stage": spec.stage, "gpus": gpus, "gpu_memory_bytes": gpu_memory,
              "headroom": headroom, "usable_bytes": usable, "prompt_tokens": inp.prompt_tokens,
              "dtype_bytes": spec.weight_bytes, "gradient_checkpointing": spec.checkpointing,
              "models": _models(spec), "notes": list(spec.notes), **evaluate(spec, gpus, usable),
              "_output_shape": spec.output}
    result["advice"], result["combined"] = [], None
    if not result["fits"] or result["min_gpus"] is None:
        result["advice"], result["combined"] = _advise(inp, cfg, spec, gpus, usable, gpu_memory)
    return result


def _spec_with(inp: PlanInputs, overrides: list[str], gpu_memory: float) -> StageSpec:
    return replace(build_spec(load_stage(inp, overrides), inp.recipe, inp), gpu_memory=gpu_memory)


def _advise(inp: PlanInputs, cfg, base_spec: StageSpec, gpus: int, usable: float,
            gpu_memory: float) -> tuple[list[dict], dict | None]:
    """Single changes that lower the peak; if none fits alone, the best ones stacked until the plan fits."""
    base = {p.name: p.gpu_bytes for p in plan(base_spec, gpus)}
    changes = []
    for o in registry.get(cfg.stage).plan_changes(cfg):
        try:
            changes.append((o, _spec_with(inp, o.split(), gpu_memory)))
        except UserError:  # a combination the stage refuses (its config validators say why)
            continue
    # keep a change that lowers any phase over the limit: the peak phase may not be the only one over
    helps = [any(p.gpu_bytes < base[p.name] - 2**20 and base[p.name] > usable for p in plan(spec, gpus))
             for _, spec in changes]
    rows = [a for a, h in zip(advice(changes, gpus, usable), helps, strict=True) if h]
    rows.sort(key=lambda a: (not a["fits"], a["peak_bytes"]))
    if not rows or rows[0]["fits"]:
        return rows, None
    stacked: list[str] = []
    spec = base_spec
    for a in rows:
        try:
            spec = _spec_with(inp, [*stacked, *a["change"].split()], gpu_memory)
        except UserError:  # refused together with an earlier change: leave it out
            continue
        stacked += [o for o in a["change"].split() if o not in stacked]
        p = peak(plan(spec, gpus))
        if p <= usable:
            break
    return rows, {"change": " ".join(stacked), "peak_bytes": p, "fits": p <= usable,
                  "min_gpus": min_gpus(spec, usable)}


def _models(spec: StageSpec) -> dict[str, str]:
    seen: dict[str, str] = {}
    for ph in spec.phases:
        for m in (*ph.trained, *ph.frozen):
            lora = getattr(m, "lora_r", None)
            seen.setdefault(m.label, m.shape.describe() + (f" + LoRA r={lora}" if lora else ""))
    return seen


def _g(n: float) -> str:
    return f"{n / GiB:8.2f}"


def render(r: dict) -> str:
    lines = [f"recipe {r['recipe']} (stage {r['stage']})"]
    lines += [f"  {label:<11} {desc}" for label, desc in r["models"].items()]
    lines.append(f"{r['gpus']} GPU(s) x {r['gpu_memory_bytes'] / GiB:.1f} GiB, {r['headroom']:.0%} kept free "
                 f"(CUDA context, NCCL, fragmentation) -> {r['usable_bytes'] / GiB:.1f} GiB usable per GPU; "
                 f"{8 * r['dtype_bytes']}-bit weights, gradient checkpointing "
                 f"{'on' if r['gradient_checkpointing'] else 'off'}, prompts of {r['prompt_tokens']} tokens assumed")
    width = max(len(t["name"]) for p in r["phases"] for t in p["terms"]) + 2
    for p in r["phases"]:
        lines += ["", f"phase {p['name']}: {p['setup']}", f"  {'component':<{width}} GiB/GPU  arithmetic"]
        for t in p["terms"]:
            where = "  [CPU]" if t["device"] == "cpu" else ""
            lines.append(f"  {t['name']:<{width}}{_g(t['bytes'])}  {t['formula']}{where}")
        lines.append(f"  {'total on GPU':<{width}}{_g(p['gpu_bytes'])}")
        if p["cpu_bytes"]:
            lines.append(f"  {'on CPU per rank':<{width}}{_g(p['cpu_bytes'])}  (x ranks per node = host RAM)")
    lines.append("")
    lines += [f"note: {n}" for n in r["notes"]]
    verdict = "FITS" if r["fits"] else "DOES NOT FIT"
    lines.append(f"{verdict}: peak {r['peak_bytes'] / GiB:.1f} GiB per GPU (phase {r['peak_phase']}) vs "
                 f"{r['usable_bytes'] / GiB:.1f} GiB usable on {r['gpus']} GPU(s)")
    if r["min_gpus"] is None:
        lines.append("no number of GPUs fits with these settings (a one-process phase, or unsharded states)")
    else:
        lines.append(f"minimum GPUs with these settings: {r['min_gpus']}")
    if r["advice"]:
        lines.append(f"changes that lower the peak (one at a time), peak on {r['gpus']} GPU(s):")
        for a in r["advice"]:
            lines.append(_advice_line(a))
    if r["combined"]:
        lines.append("together:")
        lines.append(_advice_line(r["combined"]))
    return "\n".join(lines)


def _advice_line(a: dict) -> str:
    mg = "no GPU count fits" if a["min_gpus"] is None else f"min GPUs {a['min_gpus']}"
    return f"  {'fits      ' if a['fits'] else 'still over'} {a['peak_bytes'] / GiB:7.1f} GiB  ({mg})  {a['change']}"
