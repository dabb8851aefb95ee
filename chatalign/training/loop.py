"""A lean training loop shared by the SFT, reward and rejection-sampling stages.

Single process: plain torch AdamW. Several ranks or `deepspeed.enabled`: a DeepSpeed engine (ZeRO 0-3); both
behind one backend (chatalign.training.backend). The whole data order is fixed up front (`plan`), so resuming
replays exactly the same batches. One optimizer step: this rank's micro-batches of the step's items (the same
sharding PPO's update uses), gradient accumulation, a skipped update on a non-finite loss or gradient, metrics,
evaluation and checkpoints when due, and a clean stop on SIGTERM/SIGINT.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from chatalign.errors import UserError
from chatalign.runs import RunDir
from chatalign.training.backend import Backend, EngineBackend, TorchBackend, optimizer_step
from chatalign.training.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
from chatalign.training.config import CheckpointConfig, DeepSpeedConfig, OptimConfig
from chatalign.training.distributed import DistContext, rank_micro_batches
from chatalign.training.schedule import lr_factor, warmup_steps_for
from chatalign.training.signals import Interrupted, StopFlag

log = logging.getLogger(__name__)


class NonFiniteLoss(UserError):
    """Too many steps with NaN/inf loss."""

    exit_code = 3


@dataclass
class TrainJob:
    """What a stage hands the loop. `loss_module(**batch)` returns the summed loss of a micro-batch;
    `weights[i]` is what item i counts for in the mean (trained tokens, or pairs)."""

    loss_module: nn.Module
    items: Sequence[Any]
    weights: Sequence[float]
    collate: Callable[[Sequence[Any]], dict]
    plan: list[list[int]]  # item indices per optimizer step (global, all ranks)
    micro_batch_items: int = 1
    unit: str = "tok"
    extra_metrics: Callable[[dict], dict] | None = None  # called with the batch's aux outputs
    eval_fn: Callable[[int], dict] | None = None
    eval_every: int = 0
    trainable_filter: Callable[[str], bool] | None = None  # which params a checkpoint keeps (LoRA)
    log_every: int = 1
    aux: dict = field(default_factory=dict)


@dataclass
class StepResult:
    loss: float  # mean over the step's items, all ranks
    weight: float  # what the step's items count for (tokens, pairs)
    lr: float  # the learning rate the step ran at
    grad_norm: float
    applied: bool  # False: non-finite loss or gradient, update skipped
    aux: dict[str, float]  # this rank's sums of the loss module's aux outputs


def build_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in params:
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # no empty group: DeepSpeed's ZeRO-3 optimizer drops it, and the schedule would then count one group too many
    # (LoRA trains only matrices: no parameter without decay)
    groups = [g for g in groups if g["params"]]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, fused=can_fuse(decay + no_decay))


def can_fuse(params: list[torch.Tensor]) -> bool:
    """Fused AdamW (one kernel over all tensors) where torch has it: about 6x faster a step on CPU than the
    per-tensor loop for a 135M model (bench/README.md)."""
    return bool(params) and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)


def build_backend(job: TrainJob, optim: OptimConfig, ds: DeepSpeedConfig, dist: DistContext) -> Backend:
    """AdamW with the warmup + decay schedule over the job's steps, in a DeepSpeed engine under several ranks
    or `deepspeed.enabled`, else plain torch."""
    module = job.loss_module
    optimizer = build_optimizer([(n, p) for n, p in module.named_parameters() if p.requires_grad], optim)
    total = len(job.plan)
    warmup = warmup_steps_for(total, optim.warmup_ratio, optim.min_warmup_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total, warmup, optim.schedule, optim.min_lr_ratio))
    if dist.use_deepspeed(ds):
        engine = dist.deepspeed_engine(module, optimizer, sched, ds, optim, job.micro_batch_items)
        return EngineBackend(engine, optimizer, ds.zero_stage, job.trainable_filter)
    return TorchBackend(module, optimizer, sched, optim.grad_clip, job.trainable_filter)


@contextmanager
def progress_bar(enabled: bool, total: int, initial: int, desc: str) -> Iterator[Any]:
    """A tqdm bar (closed on exit), or None when not `enabled`."""
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


def train(job: TrainJob, optim: OptimConfig, ckpt: CheckpointConfig, ds: DeepSpeedConfig, run: RunDir,
          dist: DistContext, resume: bool, progress: bool = True, desc: str = "train",
          backend: Backend | None = None) -> dict:
    """Run the job's plan (from its last checkpoint with `resume`); return the last step's record. `backend`:
    one built by `build_backend` when the caller needs it afterwards (to export the model)."""
    backend = backend or build_backend(job, optim, ds, dist)
    start, skips = restore(backend, run, dist, len(job.plan)) if resume else (0, 0)
    job.loss_module.train()
    last: dict = {}
    rate = Throughput()
    with progress_bar(progress and dist.is_main, len(job.plan), start, desc) as bar, StopFlag() as stop:
        for step in range(start, len(job.plan)):
            result = train_step(job, backend, dist, job.plan[step])
            skips = count_skipped(result, skips, step + 1, optim.max_nonfinite_skips, run)
            last = step_record(job, dist, step + 1, result, rate)
            if dist.is_main:
                run.log_metrics(last)
            if bar is not None:
                bar.set_postfix(loss=f"{result.loss:.4f}", **{f"{job.unit}/s": f"{last[f'{job.unit}_per_s']:.0f}"})
                bar.update(1)
            want_stop = dist.any_flag(stop.signum is not None)
            if (step + 1) % ckpt.every_steps == 0 or want_stop:
                save_checkpoint(run.checkpoints, step + 1, backend, dist, {"nonfinite_skips": skips})
                if dist.is_main:
                    prune_checkpoints(run.checkpoints, ckpt.keep_last)
            if want_stop:
                raise Interrupted(f"interrupted by signal at step {step + 1}/{len(job.plan)}; checkpoint saved in "
                                  f"{run.checkpoints}; continue with --resume")
    return last


def restore(backend: Backend, run: RunDir, dist: DistContext, total_steps: int) -> tuple[int, int]:
    """Load the latest checkpoint; return (steps done, non-finite steps skipped so far)."""
    ck = latest_checkpoint(run.checkpoints)
    if ck is None:
        if dist.is_main:
            log.info("no checkpoint in %s: starting from step 0", run.checkpoints)
        return 0, 0
    state = load_checkpoint(ck, backend)
    start = state["step"]
    backend.fast_forward(start)  # the schedule is a pure function of the step
    if dist.is_main:
        run.truncate_metrics(start)
        log.info("resumed from %s at step %d/%d", ck.name, start, total_steps)
    return start, state.get("nonfinite_skips", 0)


def train_step(job: TrainJob, backend: Backend, dist: DistContext, indices: Sequence[int]) -> StepResult:
    """One optimizer step over the items `indices` (all ranks): this rank's micro-batches, then the update."""
    weight = float(sum(job.weights[i] for i in indices)) or 1.0
    loss_sum, aux_sum = 0.0, {}
    for mb in rank_micro_batches(indices, dist, job.micro_batch_items):
        out = backend(**job.collate([job.items[i] for i in mb.items]))
        loss_part, aux = (out if isinstance(out, tuple) else (out, {}))
        # each rank's gradient is averaged over the ranks: scaled by the world size it sums to the step's mean
        backend.backward(loss_part * (0.0 if mb.dummy else dist.world_size / weight), mb.last)
        if not mb.dummy:
            loss_sum += float(loss_part.detach())
            for key, v in aux.items():
                aux_sum[key] = aux_sum.get(key, 0.0) + float(v)
    lr = backend.lr()
    loss = dist.all_reduce_sum(loss_sum) / weight
    grad_norm, applied = optimizer_step(backend, math.isfinite(loss))
    return StepResult(loss=loss, weight=weight, lr=lr, grad_norm=grad_norm, applied=applied, aux=aux_sum)


def count_skipped(result: StepResult, skips: int, done: int, allowed: int, run: RunDir) -> int:
    """Skipped updates so far; more than `allowed` stops the run."""
    if result.applied:
        return skips
    skips += 1
    log.warning("step %d: non-finite loss or gradient, update skipped (%d/%d allowed)", done, skips, allowed)
    if skips > allowed:
        raise NonFiniteLoss(f"stopped at step {done}: {skips} steps with NaN/inf loss or gradients "
                            f"(max_nonfinite_skips={allowed}); the last good checkpoint is kept in {run.checkpoints}")
    return skips


class Throughput:
    """Units (tokens, pairs) per second since the loop started in this process."""

    def __init__(self):
        self.start, self.units = time.perf_counter(), 0.0

    def add(self, units: float) -> None:
        self.units += units

    def per_second(self) -> float:
        elapsed = time.perf_counter() - self.start
        return self.units / elapsed if elapsed > 0 else 0.0


def step_record(job: TrainJob, dist: DistContext, done: int, result: StepResult, rate: Throughput) -> dict:
    """The metrics line of step `done`: loss, lr, gradient norm, aux metrics (all ranks), evaluation when due."""
    rate.add(result.weight)
    record = {"step": done, "loss": result.loss, "lr": result.lr, "grad_norm": result.grad_norm,
              job.unit: result.weight}
    if result.aux:
        aux_tot = {k: dist.all_reduce_sum(v) for k, v in result.aux.items()}
        record.update(job.extra_metrics(aux_tot) if job.extra_metrics else aux_tot)
    if job.eval_fn and job.eval_every and (done % job.eval_every == 0 or done == len(job.plan)):
        record.update(job.eval_fn(done))
        job.loss_module.train()
    record[f"{job.unit}_per_s"] = rate.per_second()
    return record
