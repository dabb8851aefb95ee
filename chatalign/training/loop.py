"""A lean training loop shared by the SFT, reward and rejection-sampling stages.

Single process: plain torch AdamW. Several ranks or `deepspeed.enabled`: a DeepSpeed engine (ZeRO 0-3).
The whole data order is fixed up front (`plan`), so resuming replays exactly the same batches.
"""

from __future__ import annotations

import logging
import math
import signal
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from chatalign.errors import UserError
from chatalign.runs import RunDir
from chatalign.training.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
from chatalign.training.config import CheckpointConfig, DeepSpeedConfig, OptimConfig
from chatalign.training.distributed import DistContext
from chatalign.training.schedule import lr_factor, warmup_steps_for

log = logging.getLogger(__name__)


class Interrupted(UserError):
    """SIGTERM/SIGINT: a checkpoint was saved and the run can be resumed."""

    exit_code = 130


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


class _StopFlag:
    def __init__(self):
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self):
        for s in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[s] = signal.signal(s, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, _frame):
        self.signum = signum

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


def build_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in params:
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, fused=can_fuse(decay + no_decay))


def can_fuse(params: list[torch.Tensor]) -> bool:
    """Fused AdamW (one kernel over all tensors) where torch has it: about 6x faster a step on CPU than the
    per-tensor loop for a 135M model (bench/README.md)."""
    return bool(params) and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)


def train(job: TrainJob, optim: OptimConfig, ckpt: CheckpointConfig, ds: DeepSpeedConfig, run: RunDir,
          dist: DistContext, resume: bool, progress: bool = True, desc: str = "train") -> dict:
    total_steps = len(job.plan)
    warmup = warmup_steps_for(total_steps, optim.warmup_ratio, optim.min_warmup_steps)
    module = job.loss_module
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    optimizer = build_optimizer(named, optim)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total_steps, warmup, optim.schedule, optim.min_lr_ratio))

    engine = None
    if dist.use_deepspeed(ds):
        engine = dist.deepspeed_engine(module, optimizer, sched, ds, optim, job.micro_batch_items)

    start_step, skips = 0, 0
    if resume:
        ck = latest_checkpoint(run.checkpoints)
        if ck is not None:
            state = load_checkpoint(ck, module, optimizer, engine, job.trainable_filter)
            start_step, skips = state["step"], state.get("nonfinite_skips", 0)
            if engine is None:  # the schedule is a pure function of the step: fast-forward it
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # "step() before optimizer.step()"
                    for _ in range(start_step):
                        sched.step()
            if dist.is_main:
                run.truncate_metrics(start_step)
                log.info("resumed from %s at step %d/%d", ck.name, start_step, total_steps)
        elif dist.is_main:
            log.info("no checkpoint in %s: starting from step 0", run.checkpoints)

    module.train()
    bar = None
    if progress and dist.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, initial=start_step, desc=desc, dynamic_ncols=True)
    last: dict = {}
    t_window, n_window = time.perf_counter(), 0.0
    with _StopFlag() as stop:
        for step in range(start_step, total_steps):
            indices = job.plan[step]
            global_weight = float(sum(job.weights[i] for i in indices)) or 1.0
            mine = list(indices[dist.rank::dist.world_size])
            micro = [mine[k:k + job.micro_batch_items] for k in range(0, len(mine), job.micro_batch_items)]
            n_micro = max(1, math.ceil(math.ceil(len(indices) / dist.world_size) / job.micro_batch_items))
            while len(micro) < n_micro:  # every rank runs as many forwards as the others (ZeRO-3 collectives)
                micro.append([])
            loss_sum, aux_sum = 0.0, {}
            for k, part in enumerate(micro):
                dummy = not part
                batch = job.collate([job.items[i] for i in (part or indices[:1])])
                out = (engine or module)(**batch)
                loss_part, aux = (out if isinstance(out, tuple) else (out, {}))
                scale = 0.0 if dummy else dist.world_size / global_weight
                loss = loss_part * scale
                if engine is not None:
                    engine.set_gradient_accumulation_boundary(k == len(micro) - 1)
                    engine.backward(loss, scale_wrt_gas=False)
                else:
                    loss.backward()
                if not dummy:
                    loss_sum += float(loss_part.detach())
                    for key, v in aux.items():
                        aux_sum[key] = aux_sum.get(key, 0.0) + float(v)
            step_lr = optimizer.param_groups[0]["lr"]
            total_loss = dist.all_reduce_sum(loss_sum) / global_weight
            finite = math.isfinite(total_loss)
            if engine is not None:
                if finite:
                    engine.step()
                    grad_norm = engine.get_global_grad_norm()
                    grad_norm = float(grad_norm) if grad_norm is not None else float("nan")
                else:
                    engine.zero_grad()
                    grad_norm = float("nan")
            else:
                grad_norm = float("nan")
                if finite:
                    # without clipping the norm is still measured (max_norm=inf scales by 1): NaN gradients
                    # under a finite loss must be caught, and a healthy step must not look non-finite
                    grad_norm = float(torch.nn.utils.clip_grad_norm_(
                        [p for _, p in named], optim.grad_clip or float("inf")))
                    finite = math.isfinite(grad_norm)
                if finite:
                    optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                sched.step()
            if not finite:
                skips += 1
                log.warning("step %d: non-finite loss or gradient, update skipped (%d/%d allowed)",
                            step + 1, skips, optim.max_nonfinite_skips)
                if skips > optim.max_nonfinite_skips:
                    raise NonFiniteLoss(
                        f"stopped at step {step + 1}: {skips} steps with NaN/inf loss or gradients "
                        f"(max_nonfinite_skips={optim.max_nonfinite_skips}); the last good checkpoint "
                        f"is kept in {run.checkpoints}")
            n_window += global_weight
            done = step + 1
            record = {"step": done, "loss": total_loss, "lr": step_lr,
                      "grad_norm": grad_norm,
                      job.unit: global_weight}
            if aux_sum:
                aux_tot = {k: dist.all_reduce_sum(v) for k, v in aux_sum.items()}
                record.update(job.extra_metrics(aux_tot) if job.extra_metrics else aux_tot)
            if job.eval_fn and job.eval_every and (done % job.eval_every == 0 or done == total_steps):
                record.update(job.eval_fn(done))
                module.train()
            elapsed = time.perf_counter() - t_window
            record[f"{job.unit}_per_s"] = n_window / elapsed if elapsed > 0 else 0.0
            if dist.is_main:
                run.log_metrics(record)
            last = record
            if bar is not None:
                bar.set_postfix(loss=f"{total_loss:.4f}", **{f"{job.unit}/s": f"{record[f'{job.unit}_per_s']:.0f}"})
                bar.update(1)
            want_stop = dist.any_flag(stop.signum is not None)
            if done % ckpt.every_steps == 0 or want_stop:
                save_checkpoint(run.checkpoints, done, module, optimizer, engine, dist,
                                {"nonfinite_skips": skips}, job.trainable_filter)
                if dist.is_main:
                    prune_checkpoints(run.checkpoints, ckpt.keep_last)
            if want_stop:
                if bar is not None:
                    bar.close()
                raise Interrupted(f"interrupted by signal at step {done}/{total_steps}; checkpoint saved in "
                                  f"{run.checkpoints}; continue with --resume")
    if bar is not None:
        bar.close()
    return last
