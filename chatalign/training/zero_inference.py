"""Frozen networks partitioned over the ranks with DeepSpeed ZeRO-3 inference, and forwards kept in lockstep.

`inference_engine` wraps a module in `deepspeed.initialize` with a ZeRO stage-3 config and no optimizer: every
parameter is partitioned over the ranks (each rank keeps 1/N of it), and the engine's hooks all-gather a
submodule's parameters just before that submodule runs and free them after, so a forward holds about one layer
whole at a time. Each forward is therefore a sequence of collectives: every rank must run the same number of
forwards in the same order, or the ranks wait for each other forever. A rank with less work than the others
runs `lockstep_count(dist, n) - n` dummy forwards (one token) after its real ones (`lockstep_chunks`).
"""

from __future__ import annotations

import torch


def inference_engine(module: torch.nn.Module, dist):
    """A DeepSpeed ZeRO-3 engine without optimizer around `module` (frozen, eval mode); call it like the module.

    `dist` must be a process group of several ranks (one rank has nothing to partition over)."""
    import deepspeed

    from chatalign.training.config import DeepSpeedConfig, OptimConfig

    bf16 = any(p.dtype == torch.bfloat16 for p in module.parameters())
    # the training engines' ZeRO-3 settings (every parameter partitioned, none kept whole as "persistent")
    config = dist.deepspeed_config(DeepSpeedConfig(enabled=True, zero_stage=3), OptimConfig(grad_clip=None), 1,
                                   bf16=bf16)
    for p in module.parameters():
        p.requires_grad_(False)
    engine, _, _, _ = deepspeed.initialize(model=module, config=config)
    engine.eval()
    return engine


def lockstep_count(dist, n: int) -> int:
    """The largest `n` over the ranks: the number of forwards every rank runs."""
    if not dist.initialized:
        return n
    import torch.distributed as tdist

    from chatalign.training.distributed import collective_device

    t = torch.tensor([n], dtype=torch.int64, device=collective_device())
    tdist.all_reduce(t, op=tdist.ReduceOp.MAX)
    return int(t.item())


def lockstep_chunks(dist, n: int, size: int):
    """range(n) in chunks of `size`, then None (run a dummy forward) until every rank has had as many steps as
    the rank with the most chunks."""
    mine = -(-n // size)
    for k in range(lockstep_count(dist, mine)):
        yield range(k * size, min(n, (k + 1) * size)) if k < mine else None


def shard_numels(module: torch.nn.Module) -> tuple[int, int]:
    """(whole parameter count, elements this rank holds): equal when nothing is partitioned."""
    full = sum(getattr(p, "ds_numel", p.numel()) for p in module.parameters())
    local = sum(p.ds_tensor.numel() if hasattr(p, "ds_tensor") else p.numel() for p in module.parameters())
    return full, local
