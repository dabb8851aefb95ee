"""Resumable training checkpoints, written atomically: a temp directory renamed into place.

Layout of `checkpoints/step-0000042/`: `model.safetensors` (trainable weights), `optimizer.pt` (tensors
and plain values only: read back with `weights_only=True`, never unpickling code), `state.json`.
Under DeepSpeed the engine's own sharded checkpoint is written in `ds/` inside the same atomic directory;
it is read back with `weights_only=True` too (DeepSpeed itself would unpickle it: `safe_deepspeed_load`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from chatalign.errors import RunError

STEP_RE = re.compile(r"^step-(\d+)$")


def pause_for_fault_tests(tmp: Path) -> None:
    """`CHATALIGN_FAULT_PAUSE_IN_CHECKPOINT=S` sleeps S seconds once a checkpoint's files are written under
    their temporary name and before the rename, so the reliability tests can SIGKILL a run in the middle of a
    checkpoint write deterministically (a tiny model's checkpoint is otherwise written in milliseconds)."""
    pause = float(os.environ.get("CHATALIGN_FAULT_PAUSE_IN_CHECKPOINT") or 0)
    if pause > 0:
        (tmp / ".writing").touch()
        time.sleep(pause)


def list_checkpoints(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := STEP_RE.match(p.name)) and
             (p / "state.json").is_file()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(root: Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


def prune_checkpoints(root: Path, keep_last: int) -> None:
    for p in list_checkpoints(root)[:-keep_last]:
        shutil.rmtree(p, ignore_errors=True)
    for p in root.glob(".tmp-*"):  # leftovers of a write that was killed
        shutil.rmtree(p, ignore_errors=True)


def trainable_state(module: torch.nn.Module, keep: Callable[[str], bool] | None) -> dict[str, torch.Tensor]:
    # named_parameters() lists a tied weight once, which safetensors requires
    out = {}
    for name, p in module.named_parameters():
        if keep is None or keep(name):
            out[name] = p.detach().to("cpu").contiguous()
    return out


def save_checkpoint(root: Path, step: int, module, optimizer, engine, dist, extra: dict,
                    keep: Callable[[str], bool] | None = None) -> Path:
    from safetensors.torch import save_file

    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:07d}"
    tmp = Path(dist.broadcast_object(tempfile.mkdtemp(prefix=".tmp-", dir=root) if dist.is_main else None))
    try:
        if engine is not None:
            # every rank writes its own shard; DeepSpeed's format stays inside our atomic directory
            engine.save_checkpoint(str(tmp / "ds"), tag="state", save_latest=False)
            dist.barrier()
        elif dist.is_main:
            save_file(trainable_state(module, keep), str(tmp / "model.safetensors"))
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        if dist.is_main:
            state = {"step": step, "rng": torch.get_rng_state().tolist(), **extra}
            (tmp / "state.json").write_text(json.dumps(state))
            pause_for_fault_tests(tmp)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        dist.barrier()
    except OSError as exc:
        if dist.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        raise RunError(f"could not write checkpoint step {step} in {root}: {exc.strerror or exc}; "
                       f"the previous checkpoint is intact") from None
    return final


@contextmanager
def safe_deepspeed_load() -> Iterator[None]:
    """DeepSpeed's checkpoint engine calls `torch.load(..., weights_only=False)`: a crafted checkpoint would run
    code. While it loads ours, force `weights_only=True` and allow only the two plain classes its ZeRO
    optimizer state holds (found with `torch.serialization.get_unsafe_globals_in_checkpoint`)."""
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum

    real = torch.load

    def safe_load(*args, **kwargs):
        kwargs["weights_only"] = True
        return real(*args, **kwargs)

    torch.load = safe_load
    try:
        with torch.serialization.safe_globals([LossScaler, DynamicLossScaler, ZeroStageEnum]):
            yield
    finally:
        torch.load = real


def load_checkpoint(path: Path, module, optimizer, engine, keep: Callable[[str], bool] | None = None) -> dict:
    from safetensors.torch import load_file

    state = json.loads((path / "state.json").read_text())
    if engine is not None:
        with safe_deepspeed_load():
            engine.load_checkpoint(str(path / "ds"), tag="state", load_module_strict=False)
    else:
        weights = load_file(str(path / "model.safetensors"))
        params = dict(module.named_parameters())
        missing = [n for n in params if (keep is None or keep(n)) and n not in weights]
        if missing:
            raise RunError(f"checkpoint {path} does not match the model: missing {missing[:3]}")
        with torch.no_grad():
            for name, tensor in weights.items():
                params[name].copy_(tensor)
        optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
    torch.set_rng_state(torch.tensor(state["rng"], dtype=torch.uint8))
    return state
