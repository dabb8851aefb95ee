"""Process-group context: one process, or several ranks (torchrun / deepspeed launcher) with DeepSpeed."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from chatalign.errors import UserError
from chatalign.training.extension_builds import prepare_extension_builds

log = logging.getLogger(__name__)


MISSING_DEEPSPEED = ("DeepSpeed is not installed: several ranks and `deepspeed.enabled: true` need it (pip install "
                     "'chatalign[deepspeed]'); one process without it trains with plain torch AdamW")


def import_deepspeed():
    """The deepspeed module, or one line saying how to get it (it is an optional extra)."""
    try:
        import deepspeed
    except ImportError:
        raise UserError(MISSING_DEEPSPEED) from None
    prepare_extension_builds()
    return deepspeed


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, timeout_minutes: float | None = None) -> DistContext:
        """Join the process group when launched by torchrun/deepspeed (WORLD_SIZE > 1). A collective that waits
        longer than `timeout_minutes` (`distributed.timeout_minutes`; None: DeepSpeed's 30) fails instead of
        hanging: at scale a rank that died or is stuck in rank-0-only work must not hold the others forever."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch

        if not torch.cuda.is_available():
            os.environ.setdefault("DS_ACCELERATOR", "cpu")
        deepspeed = import_deepspeed()

        backend = "nccl" if torch.cuda.is_available() else "gloo"
        timeout = {} if timeout_minutes is None else {"timeout": timedelta(minutes=timeout_minutes)}
        deepspeed.init_distributed(dist_backend=backend, **timeout)
        destroy_group_at_exit()
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local)
        return cls(rank=int(os.environ["RANK"]), world_size=world, local_rank=local, initialized=True)

    def use_deepspeed(self, ds) -> bool:
        return bool(ds.enabled or self.world_size > 1)

    def all_reduce_sum(self, value: float) -> float:
        if not self.initialized:
            return value
        import torch
        import torch.distributed as tdist

        t = torch.tensor([value], dtype=torch.float64, device=collective_device())
        tdist.all_reduce(t)
        return float(t.item())

    def any_flag(self, flag: bool) -> bool:
        return self.all_reduce_sum(1.0 if flag else 0.0) > 0 if self.initialized else flag

    def barrier(self) -> None:
        if self.initialized:
            import torch.distributed as tdist

            tdist.barrier()

    def broadcast_object(self, obj):
        if not self.initialized:
            return obj
        import torch.distributed as tdist

        box = [obj]
        tdist.broadcast_object_list(box, src=0)
        return box[0]

    def run_on_main(self, fn):
        """fn() on rank 0 only (file writes, reports); every rank returns its result. If it fails on rank 0,
        the other ranks raise a RunError saying so instead of waiting for it at the next collective."""
        if not self.initialized:
            return fn()
        outcome = None
        if self.is_main:
            try:
                outcome = ("ok", fn())
            except BaseException as exc:
                self.broadcast_object(("error", f"{type(exc).__name__}: {exc}"))
                raise
        status, value = self.broadcast_object(outcome)
        if status == "error":
            from chatalign.errors import RunError

            raise RunError(f"rank 0 failed: {value}")
        return value

    def deepspeed_config(self, ds, optim, micro_batch_items: int, bf16: bool = False) -> dict:
        zero: dict = {"stage": ds.zero_stage}
        if ds.zero_stage == 3:
            zero.update({"stage3_gather_16bit_weights_on_model_save": True,
                         "stage3_param_persistence_threshold": 0})
        if ds.offload_optimizer != "none":
            zero["offload_optimizer"] = {"device": ds.offload_optimizer, "nvme_path": ds.nvme_path}
        if ds.offload_param != "none":
            zero["offload_param"] = {"device": ds.offload_param, "nvme_path": ds.nvme_path}
        cfg = {
            "train_micro_batch_size_per_gpu": micro_batch_items,
            "gradient_accumulation_steps": 1,  # we mark accumulation boundaries ourselves
            "zero_optimization": zero,
            "zero_allow_untested_optimizer": True,
            "bf16": {"enabled": bf16},
            "steps_per_print": 10**9,
            "wall_clock_breakdown": False,
        }
        if optim.grad_clip:
            cfg["gradient_clipping"] = optim.grad_clip
        if ds.offload_optimizer != "none":
            # our torch AdamW (fused, where torch has it) steps the offloaded fp32 partitions on the CPU;
            # DeepSpeedCPUAdam would be faster but needs its C++ op compiled at first use
            cfg["zero_force_ds_cpu_optimizer"] = False
        return cfg

    def deepspeed_engine(self, module, optimizer, scheduler, ds, optim, micro_batch_items: int):
        if not self.initialized:
            single_rank_group()
        deepspeed = import_deepspeed()
        import torch

        bf16 = any(p.dtype == torch.bfloat16 for p in module.parameters())
        config = self.deepspeed_config(ds, optim, micro_batch_items, bf16=bf16)
        engine, _, _, _ = deepspeed.initialize(model=module, optimizer=optimizer, lr_scheduler=scheduler,
                                               config=config)
        return engine


def collective_device():
    """Where a tensor of a collective must live: this rank's GPU under NCCL (it reduces only CUDA tensors), else
    the CPU (gloo)."""
    import torch
    import torch.distributed as tdist

    if tdist.is_initialized() and tdist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def share(items: Sequence, dist: DistContext) -> list:
    """This rank's items: positions rank, rank + world, ... (every rank gets ceil or floor of n / world)."""
    return list(items[dist.rank::dist.world_size])


def merge(shares: Sequence[Sequence], n: int) -> list:
    """Inverse of `share` over all ranks: item i of the batch is item i // world of rank i % world."""
    world = len(shares)
    return [shares[i % world][i // world] for i in range(n)]


def gather_rows(dist: DistContext, rows: list, n: int) -> list:
    """Every rank's `share` of per-item rows (plain Python objects), merged back into batch order."""
    if not dist.initialized:
        return rows
    import torch.distributed as tdist

    box: list = [None] * dist.world_size
    tdist.all_gather_object(box, rows)
    return merge(box, n)


def all_reduce_sums(dist: DistContext, values: dict[str, float]) -> dict[str, float]:
    """Sum each value over the ranks in one collective (keys in the same order on every rank)."""
    if not dist.initialized or not values:
        return dict(values)
    import torch
    import torch.distributed as tdist

    keys = list(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=collective_device())
    tdist.all_reduce(t)
    return dict(zip(keys, t.tolist()))


@dataclass(frozen=True)
class MicroBatch:
    """Items of one forward/backward. A dummy (this rank had no items left) runs the step's first items at
    weight 0, because under ZeRO-3 every forward and backward gathers parameters with collectives."""

    items: list
    dummy: bool
    last: bool  # the optimizer step's accumulation boundary


def rank_micro_batches(step_items: Sequence, dist: DistContext, micro: int) -> list[MicroBatch]:
    """This rank's share of one optimizer step's items (`items[rank::world]`), cut into micro-batches of `micro`,
    then dummies until it runs as many as the busiest rank."""
    mine = list(step_items[dist.rank::dist.world_size])
    parts = [mine[k:k + micro] for k in range(0, len(mine), micro)]
    n_micro = max(1, math.ceil(math.ceil(len(step_items) / dist.world_size) / micro))
    parts += [[]] * (n_micro - len(parts))
    return [MicroBatch(items=part or list(step_items[:1]), dummy=not part, last=k == len(parts) - 1)
            for k, part in enumerate(parts)]


def destroy_group_at_exit() -> None:
    """Tear the process group down when the interpreter exits (registered once): a gloo group left to the
    interpreter's own teardown destroys its worker threads while they are joinable, and the process aborts with
    "terminate called without an active exception" (seen at exit of a plain one-rank gloo process)."""
    import atexit

    global _teardown_registered
    if _teardown_registered:
        return
    _teardown_registered = True

    def destroy() -> None:
        import torch.distributed as tdist

        if tdist.is_available() and tdist.is_initialized():
            tdist.destroy_process_group()

    atexit.register(destroy)


_teardown_registered = False


def leave_process_group() -> None:
    """Every rank leaves the process group at the same point, after a finished run: engines freed first (their
    reference cycles hold the group's users), a barrier so no rank exits while another still works alone (rank
    0's reports and evaluation), then the group destroyed on all ranks together. A rank that exited alone while
    its peer still held the group aborted now and then at interpreter exit ("terminate called without an active
    exception", about 1 in 100 two-rank launches here). Error paths keep the at-exit teardown: a barrier there
    could wait for a rank that is gone."""
    import gc

    import torch.distributed as tdist

    if not (tdist.is_available() and tdist.is_initialized()):
        return
    gc.collect()
    tdist.barrier()
    tdist.destroy_process_group()


def single_rank_group() -> None:
    """A 1-rank process group for `deepspeed.enabled` in a process started without a launcher: DeepSpeed needs
    a group, and without launcher variables it goes looking for MPI (mpi4py) instead. Free local port."""
    import socket

    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    import torch.distributed as tdist

    if tdist.is_available() and tdist.is_initialized():
        return
    deepspeed = import_deepspeed()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for key, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": "0", "WORLD_SIZE": "1",
                       "LOCAL_RANK": "0"}.items():
        os.environ.setdefault(key, value)
    deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")
    destroy_group_at_exit()
