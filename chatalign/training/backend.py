"""How one network trains: plain torch in one process, or a DeepSpeed engine (ZeRO 0-3, one or several ranks).

Both backends offer the same operations, so a training loop (the SFT/RM loop, PPO's update) is written once:
call the backend like the module, `backward(loss, last)` per micro-batch, then `clip_grads()` and `step()` (or
`skip_step()` to drop the accumulated gradients); `save`/`load` a checkpoint's part, `trainable_state()` for
the trained weights (named as in `state_module`: the HF model behind a forward wrapper) and
`export_state(module)` for a whole state dict to save (gathered from ZeRO-3 shards).

What differs, and stays inside: torch measures and clips the gradient norm before the step (so a non-finite one
can be refused before anything moves); a DeepSpeed engine clips inside `step()` and reports the norm after.
An engine writes its own sharded checkpoint on every rank; torch writes the trained weights as safetensors and
hands the optimizer state to the caller, which decides how such states are grouped in files.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from chatalign.errors import RunError

ENGINE_TAG = "state"  # the tag directory inside an engine's checkpoint


def selected_params(module: nn.Module, keep: Callable[[str], bool] | None) -> list[tuple[str, nn.Parameter]]:
    """The parameters a checkpoint keeps: those `keep(name)` accepts, or the trained ones (requires_grad).
    named_parameters() lists a tied weight once, which safetensors requires."""
    return [(n, p) for n, p in module.named_parameters() if (keep(n) if keep is not None else p.requires_grad)]


def load_weights(module: nn.Module, path: Path, keep: Callable[[str], bool] | None = None) -> None:
    """Copy the tensors of the safetensors file `path` into `module` (whole parameters, not ZeRO-3 shards)."""
    from safetensors.torch import load_file

    weights = load_file(str(path))
    params = dict(module.named_parameters())
    missing = [n for n, _ in selected_params(module, keep) if n not in weights]
    unknown = [n for n in weights if n not in params]
    if missing or unknown:
        raise RunError(f"{path} does not match the model (missing {missing[:3]}, unexpected {unknown[:3]}): "
                       "was the run started with another model or LoRA setting?")
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor)


class _Runner:
    """What both backends do alike: forwards and train/eval mode go to `runner` (the module, or the engine
    around it); the live learning rate is the torch optimizer's (a DeepSpeed engine steps that optimizer)."""

    runner: Any
    optimizer: torch.optim.Optimizer

    def __call__(self, *args, **kwargs):
        return self.runner(*args, **kwargs)

    def train(self) -> None:
        self.runner.train()

    def eval(self) -> None:
        self.runner.eval()

    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def close(self) -> None:
        """Release what the backend holds beyond the module (nothing for plain torch)."""


class TorchBackend(_Runner):
    """One process, a torch optimizer (and optional per-step scheduler) stepping the module's parameters."""

    partitioned = False

    def __init__(self, module: nn.Module, optimizer: torch.optim.Optimizer, scheduler=None,
                 grad_clip: float | None = None, keep: Callable[[str], bool] | None = None,
                 state_module: nn.Module | None = None):
        self.module = self.runner = module
        self.optimizer, self.scheduler, self.grad_clip, self.keep = optimizer, scheduler, grad_clip, keep
        self.state_module = state_module if state_module is not None else module

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def backward(self, loss: torch.Tensor, last: bool) -> None:
        loss.backward()

    def clip_grads(self) -> float | None:
        """Total gradient norm before clipping; clipped in place to `grad_clip` when one is set. Without clipping
        the norm is still measured (max_norm=inf scales by 1): NaN gradients under a finite loss must be caught."""
        grads = [p for p in self.module.parameters() if p.requires_grad and p.grad is not None]
        if not grads:
            return 0.0
        return float(torch.nn.utils.clip_grad_norm_(grads, self.grad_clip or float("inf")))

    def step(self) -> float | None:
        """Apply the accumulated gradients; the norm is known from `clip_grads` already (None)."""
        self.optimizer.step()
        self.skip_step()
        return None

    def skip_step(self) -> None:
        """Drop the accumulated gradients; the schedule moves on (it is a function of the step)."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.scheduler is not None:
            self.scheduler.step()

    def fast_forward(self, steps: int) -> None:
        """Put the schedule at `steps` after a resume (the optimizer state comes from the checkpoint)."""
        if self.scheduler is None:
            return
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "step() before optimizer.step()"
            for _ in range(steps):
                self.scheduler.step()

    def gathered(self):
        return contextlib.nullcontext()

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().to("cpu").contiguous() for n, p in selected_params(self.state_module, self.keep)}

    def load_trainable(self, path: Path) -> None:
        load_weights(self.state_module, path, self.keep)

    def export_state(self, module: nn.Module) -> dict[str, torch.Tensor] | None:
        """None: `module` holds its whole weights here; save it as it is."""
        return None

    def save(self, tmp: Path, weights: str, shards: str) -> dict:
        """Write the trained weights to `tmp/weights`; return the optimizer state for the caller to write."""
        from safetensors.torch import save_file

        save_file(self.trainable_state(), str(tmp / weights))
        return self.optimizer.state_dict()

    def load(self, path: Path, weights: str, shards: str, optimizer_state: Callable[[], dict]) -> None:
        self.load_trainable(path / weights)
        self.optimizer.load_state_dict(optimizer_state())


class EngineBackend(_Runner):
    """A DeepSpeed engine around the module: ZeRO 0-3, accumulation boundaries marked by us, clipping inside
    `step()`. The torch optimizer handed to `deepspeed.initialize` keeps the live learning rate."""

    def __init__(self, engine, optimizer: torch.optim.Optimizer, zero_stage: int,
                 keep: Callable[[str], bool] | None = None, state_module: nn.Module | None = None):
        self.engine = self.runner = engine
        self.optimizer, self.zero_stage, self.keep = optimizer, zero_stage, keep
        self.state_module = state_module if state_module is not None else engine.module

    @property
    def module(self) -> nn.Module:
        return self.engine.module

    @property
    def device(self) -> torch.device:
        return self.engine.device

    @property
    def partitioned(self) -> bool:
        return self.zero_stage == 3

    def close(self) -> None:
        """Tear the engine down now, at the same point on every rank (its hooks, buffers and optimizer
        partitions), rather than whenever a later garbage collection reaches its reference cycles."""
        self.engine.destroy()

    def backward(self, loss: torch.Tensor, last: bool) -> None:
        self.engine.set_gradient_accumulation_boundary(last)
        self.engine.backward(loss, scale_wrt_gas=False)

    def clip_grads(self) -> float | None:
        return None  # the engine clips inside step()

    def step(self) -> float | None:
        """Apply the accumulated gradients (clipped inside); the global norm, None when the engine has none."""
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        return None if norm is None else float(norm)

    def skip_step(self) -> None:
        self.engine.zero_grad()

    def fast_forward(self, steps: int) -> None:
        """Nothing: the engine's checkpoint holds its scheduler's state."""

    def gathered(self):
        """Whole weights for a generation or scoring phase (ZeRO-3: gathered once, per-module hooks lifted)."""
        if not self.partitioned:
            return contextlib.nullcontext()
        from deepspeed.runtime.zero.stage3 import unwrap_model_for_generation

        return unwrap_model_for_generation(self.engine)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Whole trained weights on every rank (one collective per parameter under ZeRO-3)."""
        from chatalign.training.zero_gather import gather_full_state

        wanted = {n for n, _ in selected_params(self.state_module, self.keep)}
        return {n: t.contiguous() for n, t in gather_full_state(self.state_module).items() if n in wanted}

    def load_trainable(self, path: Path) -> None:
        """Whole weights from `path` into the (possibly partitioned) parameters; every rank calls it."""
        if not self.partitioned:
            load_weights(self.state_module, path, self.keep)
            return
        import deepspeed

        params = [p for _, p in selected_params(self.state_module, self.keep)]
        with deepspeed.zero.GatheredParameters(params, modifier_rank=0):
            load_weights(self.state_module, path, self.keep)

    def export_state(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """The whole state dict of `module` (gathered from the shards; a collective: every rank calls it)."""
        from chatalign.training.zero_gather import gather_full_state

        return gather_full_state(module)

    def save(self, tmp: Path, weights: str, shards: str) -> None:
        """Every rank writes its shard of weights and optimizer states to `tmp/shards`."""
        self.engine.save_checkpoint(str(tmp / shards), tag=ENGINE_TAG, save_latest=False)

    def load(self, path: Path, weights: str, shards: str, optimizer_state: Callable[[], dict]) -> None:
        from chatalign.training.checkpoint import safe_deepspeed_load

        with safe_deepspeed_load(self.engine):
            loaded, _ = self.engine.load_checkpoint(str(path / shards), tag=ENGINE_TAG, load_module_strict=False)
        if loaded is None:
            raise RunError(f"{path / shards} holds no DeepSpeed checkpoint (was the run started without DeepSpeed, "
                           "or with another world size?)")


Backend = TorchBackend | EngineBackend


def optimizer_step(backend: Backend, loss_finite: bool) -> tuple[float, bool]:
    """Clip and apply the accumulated gradients unless the loss (or, where it is known before the step, the
    gradient norm) is not finite; then they are dropped. Returns (gradient norm or NaN, whether applied)."""
    if not loss_finite:
        backend.skip_step()
        return float("nan"), False
    norm = backend.clip_grads()
    if norm is not None and not math.isfinite(norm):
        backend.skip_step()
        return norm, False
    after = backend.step()
    norm = norm if norm is not None else after
    return (float("nan") if norm is None else norm), True
