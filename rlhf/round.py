"""`chatalign rlhf round`: round N from round N-1's run directory (or an SFT run), with lineage and resume.

Phases, each skipped on --resume when its output is complete:
  1. rejection sampling (mode rs, rs+ppo): samples -> selection (+ pool) -> SFT into `rs_sft/`;
  2. PPO (mode ppo, rs+ppo) from the RS model (or the start model), into `ppo/` and `model/`;
  3. held-out evaluation and win rates, report.md, manifest finished.
The manifest's `parents` lists the start run and the two reward models; its `rlhf` block holds the round
number, mode and the absolute start path that `chatalign rlhf status` and later rounds follow.

Under a launcher (several ranks) every rank runs the round: sampling is split over the ranks, training runs
in DeepSpeed engines (`rs.deepspeed`, `ppo.deepspeed`), and rank 0 alone holds the lock and writes the
manifest, the data files, the held-out evaluation and the report while the others wait for it.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatalign.errors import ConfigError, RunError
from chatalign.evaluation.stage_hook import check_data, run_independent
from chatalign.rlhf.config import RLHFRoundConfig
from chatalign.runs import RunDir

log = logging.getLogger(__name__)
INDEPENDENT_SUITES = ["general"]  # what `independent:` evaluates by default: the round's model against the base


@dataclass
class RoundContext:
    cfg: RLHFRoundConfig
    run: RunDir
    round: int
    start: str  # absolute run/model directory, or a model name (`embedded`, hub id)
    start_model: str  # the HF directory (or name) the round's policy is loaded from
    prompts: list
    heldout: list
    progress: bool = True
    reward_fn: Any = None
    on_ppo_iteration: Callable[[int, dict], None] | None = None


def missing_inputs(cfg: RLHFRoundConfig) -> list[str]:
    """One line per input that is not there, saying which kind of path it is and how it is resolved."""
    from chatalign.embedded import is_embedded

    cwd = Path.cwd()
    out = []
    runs = {"start": cfg.start, "reward.helpful": cfg.reward.helpful, "reward.safety": cfg.reward.safety}
    if cfg.sft_run:
        runs["sft_run"] = cfg.sft_run
    if cfg.ppo.value.init not in ("helpful", "safety") and "ppo" in cfg.mode:
        runs["ppo.value.init"] = cfg.ppo.value.init
    for key, value in runs.items():
        if key == "start" and is_embedded(value):
            continue
        if not Path(value).exists():
            out.append(f"{key}: {value} not found (run directories are relative to the current directory, "
                       f"{cwd}): run the stage that writes it first")
    for key in ("prompts", "heldout"):
        value = getattr(cfg.data, key)
        if value and not Path(value).exists():
            out.append(f"data.{key}: {value} not found (data files are relative to the recipe file)")
    return out


def load_prompts(cfg: RLHFRoundConfig) -> tuple[list, list]:
    from chatalign.data_schemas import load_records

    prompts = load_records(cfg.data.prompts, "prompt", fmt=cfg.data.format).records
    if cfg.data.max_prompts:
        prompts = prompts[:cfg.data.max_prompts]
    heldout: list = []
    if cfg.data.heldout:
        heldout = load_records(cfg.data.heldout, "prompt", fmt=cfg.data.format).records
        if cfg.data.max_heldout:
            heldout = heldout[:cfg.data.max_heldout]
    if not prompts:
        raise ConfigError(f"{cfg.data.prompts}: no prompts")
    return prompts, heldout


def plan(cfg: RLHFRoundConfig) -> dict:
    """What --dry-run prints: resolved inputs, round number, lineage, prompt counts; raises on missing inputs."""
    from chatalign.rlhf.lineage import chain, next_round_number, resolve_run_path

    missing = missing_inputs(cfg)
    if missing:
        raise ConfigError("missing inputs:\n  " + "\n  ".join(missing))
    prompts, heldout = load_prompts(cfg)
    independent = check_data(cfg.independent, INDEPENDENT_SUITES)
    start = resolve_run_path(cfg.start)
    links = chain(start)
    n = cfg.round or next_round_number(start)
    info = {"round": n, "mode": cfg.mode, "start": start, "lineage": [link.path for link in links],
            "train_prompts": len(prompts), "safety_prompts": sum(p.is_safety for p in prompts),
            "heldout_prompts": len(heldout), **({"independent": independent} if independent else {})}
    if "rs" in cfg.mode:
        from chatalign.rlhf.lineage import earlier_selected_files
        from chatalign.rlhf.rs.selection import pools_this_round

        info["rs_pools_earlier_rounds"] = [r for r, _ in earlier_selected_files(start)] \
            if pools_this_round(n, cfg.rs.pool_from_round) else []
    if "ppo" in cfg.mode and not heldout:
        info["ppo_early_stopping"] = "off (no data.heldout)"
    return info


def _link_model(src: Path, target: Path) -> None:
    """Make `target` a copy of the HF directory `src` (hard links where the filesystem allows)."""
    from chatalign.runs import link_files, replace_dir

    tmp = target.with_name(f".{target.name}-tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    link_files(src, tmp)
    replace_dir(tmp, target)  # the old copy is moved aside first: a crash never leaves no model


def prepare_context(cfg: RLHFRoundConfig, run: RunDir, progress: bool, reward_fn=None) -> RoundContext:
    from chatalign.models import resolve_model_path
    from chatalign.rlhf.lineage import next_round_number, resolve_run_path

    missing = missing_inputs(cfg)
    if missing:
        raise ConfigError("missing inputs:\n  " + "\n  ".join(missing))
    prompts, heldout = load_prompts(cfg)
    check_data(cfg.independent, INDEPENDENT_SUITES)  # before any heavy work
    start = resolve_run_path(cfg.start)
    n = cfg.round or next_round_number(start)
    return RoundContext(cfg=cfg, run=run, round=n, start=start, start_model=resolve_model_path(start),
                        prompts=prompts, heldout=heldout, progress=progress, reward_fn=reward_fn)


def sft_link_of(cfg: RLHFRoundConfig, start: str):
    """The SFT baseline of the win rates: `cfg.sft_run`, else the first non-round run of `start`'s lineage."""
    from chatalign.rlhf.lineage import chain, resolve_run_path, sft_baseline

    return chain(resolve_run_path(cfg.sft_run))[0] if cfg.sft_run else sft_baseline(start)


def _phase_done(summary: dict, phase: str, since: float, round_number: int) -> float:
    """Record a phase's wall seconds (in this process: a resumed round counts what it redid) and log them."""
    now = time.perf_counter()
    summary[f"time_{phase}_s"] = round(now - since, 1)
    log.info("round %d: %s done in %.0f s", round_number, phase, now - since)
    return now


def run_round(cfg: RLHFRoundConfig, resume: bool = False, progress: bool = True, reward_fn=None,
              on_ppo_iteration: Callable[[int, dict], None] | None = None) -> dict:
    """Run (or resume) one round; return its summary. `reward_fn` replaces the two RMs (tests, smoke runs)."""
    from chatalign.training.distributed import DistContext

    run = RunDir(cfg.output_dir, "rlhf")
    if run.is_finished() and not resume:
        raise RunError(f"{run.path} already holds a finished RLHF round; choose another output_dir")
    if not resume and run.manifest_path.is_file():
        raise RunError(f"{run.path} holds an unfinished round: add --resume to continue it, or choose another "
                       "output_dir")
    dist = DistContext.from_env(cfg.distributed.timeout_minutes)
    dist.barrier()  # every rank has looked at the run directory before rank 0 writes into it
    if dist.is_main:
        run.lock()
    try:
        ctx = prepare_context(cfg, run, progress, reward_fn)
        ctx.on_ppo_iteration = on_ppo_iteration
        if run.is_finished():
            log.info("%s is finished: nothing to resume", run.path)
            return (run.read_manifest() or {}).get("metrics", {})
        return _run_started_round(ctx, dist, resume)
    finally:
        run.unlock()


def _run_started_round(ctx: RoundContext, dist, resume: bool) -> dict:
    """The round's manifest, its phases, the held-out evaluation and the report (rank 0 writes)."""
    from chatalign.rlhf.lineage import chain
    from chatalign.rlhf.report import write_round_report
    from chatalign.rlhf.reward_fn import load_reward_fn

    cfg, run = ctx.cfg, ctx.run
    links = chain(ctx.start)
    sft_link = sft_link_of(cfg, ctx.start)
    manifest = dist.run_on_main(lambda: _start_manifest(ctx, resume, links, sft_link))
    if ctx.reward_fn is None:
        ctx.reward_fn = load_reward_fn(cfg)
    summary, clock = _run_phases(ctx, dist, resume)
    summary.update(_evaluate(ctx, dist, sft_link))
    dist.run_on_main(lambda: run_independent(cfg.independent, run.path, str(run.model_dir), ctx.start_model,
                                             INDEPENDENT_SUITES, ctx.progress))
    _phase_done(summary, "eval", clock, ctx.round)
    summary["time_round_s"] = round(sum(summary[f"time_{p}_s"] for p in ("rs", "ppo", "eval")
                                        if f"time_{p}_s" in summary), 1)

    def finish() -> None:
        write_round_report(ctx, summary, [chain(str(run.path))[0], *links])
        flat = {k: v for k, v in summary.items() if not isinstance(v, (list, dict))}
        run.finish(flat, extra={"rlhf": {**manifest["rlhf"], "summary": flat}})

    dist.run_on_main(finish)
    return summary


def _start_manifest(ctx: RoundContext, resume: bool, links: list, sft_link) -> dict:
    """The round's manifest with its `rlhf` block: round, mode, start, reward models, SFT baseline, lineage."""
    from chatalign.rlhf.lineage import resolve_run_path
    from chatalign.runs import write_json_atomic

    cfg, run = ctx.cfg, ctx.run
    parents = [ctx.start, resolve_run_path(cfg.reward.helpful), resolve_run_path(cfg.reward.safety)]
    sampler = resolve_run_path(cfg.rs.sampler) if cfg.rs.sampler is not None and cfg.mode != "ppo" else None
    manifest = run.start(cfg.model_dump(mode="json"), {"prompts": cfg.data.prompts, "heldout": cfg.data.heldout},
                         parents=parents + ([sampler] if sampler else []), resume=resume,
                         allow_changed_inputs=cfg.allow_changed_inputs)
    manifest["rlhf"] = {"round": ctx.round, "mode": cfg.mode, "start": ctx.start,
                        "reward_models": {"helpful": parents[1], "safety": parents[2]},
                        "sft_run": sft_link.path, "lineage": [link.path for link in links], "rs_sampler": sampler}
    write_json_atomic(run.manifest_path, manifest)
    return manifest


def _run_phases(ctx: RoundContext, dist, resume: bool) -> tuple[dict, float]:
    """Rejection sampling and/or PPO as the mode says, the round's model in `model/`; (summary, clock)."""
    from chatalign.rlhf.ppo.phase import run_ppo_phase
    from chatalign.rlhf.rs.phase import run_rs_phase

    cfg = ctx.cfg
    summary: dict = {"round": ctx.round, "mode": cfg.mode}
    clock = time.perf_counter()
    model_path = ctx.start_model
    if "rs" in cfg.mode:
        model_path, rs_summary = run_rs_phase(ctx, model_path, dist)
        summary.update(rs_summary)
        clock = _phase_done(summary, "rs", clock, ctx.round)
    if "ppo" in cfg.mode:
        summary.update(run_ppo_phase(ctx, model_path, ctx.run.model_dir, resume))
        clock = _phase_done(summary, "ppo", clock, ctx.round)
    else:
        dist.run_on_main(lambda: _link_model(Path(model_path), ctx.run.model_dir))
    return summary, clock


def _evaluate(ctx: RoundContext, dist, sft_link) -> dict:
    """Held-out answers of three models (this round's, its start, the SFT baseline), scored: rank 0 (the others
    wait; at scale, mind the launcher's collective timeout, or evaluate in a separate single-process `--resume`)."""
    from chatalign.models import resolve_model_path
    from chatalign.rlhf.evaluate.heldout import evaluate_round

    sft_model = resolve_model_path(sft_link.path) if ctx.cfg.eval.compare_sft else None
    return dist.run_on_main(lambda: evaluate_round(ctx, str(ctx.run.model_dir), ctx.start_model, sft_model,
                                                  launch_ranks=dist.world_size))
