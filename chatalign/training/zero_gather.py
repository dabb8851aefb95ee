"""Gather a ZeRO-3 partitioned model into one full CPU state dict (on every rank; rank 0 saves it)."""

from __future__ import annotations

import torch


def gather_full_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """One parameter at a time, so peak memory is the full model on CPU plus one gathered tensor."""
    state: dict[str, torch.Tensor] = {}
    params = list(model.named_parameters())
    partitioned = any(hasattr(p, "ds_id") for _, p in params)
    if partitioned:
        import deepspeed

        for name, p in params:
            with deepspeed.zero.GatheredParameters([p], modifier_rank=None):
                state[name] = p.detach().to("cpu").clone()
    else:
        state = {n: p.detach().to("cpu").clone() for n, p in params}
    for mod_name, mod in model.named_modules():
        for bname, buf in mod.named_buffers(recurse=False):
            if buf is None or bname in mod._non_persistent_buffers_set:
                continue  # e.g. rotary inv_freq: recomputed at load, never saved
            state.setdefault(f"{mod_name}.{bname}" if mod_name else bname, buf.detach().to("cpu").clone())
    return state
