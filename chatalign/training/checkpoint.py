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
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import torch

from chatalign.data_schemas.file_output import temp_dir_in
from chatalign.errors import DiskFullError, RunError, disk_full
from chatalign.runs import fault_disk_full, replace_dir

STEP_RE = re.compile(r"^step-(\d+)$")


def pause_for_fault_tests(tmp: Path, final: Path) -> None:
    """`CHATALIGN_FAULT_PAUSE_IN_CHECKPOINT=S` sleeps S seconds once a checkpoint's files are written under
    their temporary name and before the rename, so the reliability tests can SIGKILL a run in the middle of a
    checkpoint write deterministically (a tiny model's checkpoint is otherwise written in milliseconds).
    With `CHATALIGN_FAULT_PAUSE_AT=TEXT` only the writes whose final path contains TEXT pause (a test holds a
    run at one chosen checkpoint, e.g. `ppo/checkpoints/step-0000002`, for as long as it needs)."""
    pause = float(os.environ.get("CHATALIGN_FAULT_PAUSE_IN_CHECKPOINT") or 0)
    if pause > 0 and os.environ.get("CHATALIGN_FAULT_PAUSE_AT", "") in str(final):
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


def step_dir(root: Path, step: int) -> Path:
    return root / f"step-{step:07d}"


def write_dir_atomic(final: Path, dist, write_every_rank: Callable[[Path], None],
                     write_main: Callable[[Path], None], what: str = "checkpoint") -> Path:
    """Write a directory under a temporary name beside `final` and rename it into place, so a kill leaves the
    previous copy or the new one, never half of one. Every rank runs `write_every_rank(tmp)` (ZeRO shards), then
    rank 0 runs `write_main(tmp)` and the rename; every rank must call this (it holds collectives)."""
    if dist.is_main:
        final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(dist.broadcast_object(temp_dir_in(final.parent, ".tmp-") if dist.is_main else None))
    try:
        write_every_rank(tmp)
        dist.barrier()
        if dist.is_main:
            write_main(tmp)
            pause_for_fault_tests(tmp, final)
            fault_disk_full(final)
            replace_dir(tmp, final)
        dist.barrier()
    except OSError as exc:
        if dist.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        if disk_full(exc) is not None:
            raise DiskFullError(f"could not write {final}: {exc.strerror}; the previous {what} is intact: free some "
                                "space and run the same command again (a stage command with --resume)") from None
        raise RunError(f"could not write {final}: {exc.strerror or exc}; the previous {what} is intact") from None
    return final


def save_checkpoint(root: Path, step: int, backend, dist, extra: dict) -> Path:
    """The training loop's checkpoint after `step` optimizer steps: the backend's state, RNG and `extra`."""

    def every_rank(tmp: Path) -> None:
        optimizer = backend.save(tmp, weights="model.safetensors", shards="ds")
        if optimizer is not None:
            torch.save(optimizer, tmp / "optimizer.pt")

    def main(tmp: Path) -> None:
        state = {"step": step, "rng": torch.get_rng_state().tolist(), **extra}
        (tmp / "state.json").write_text(json.dumps(state))

    return write_dir_atomic(step_dir(root, step), dist, every_rank, main)


def load_checkpoint(path: Path, backend) -> dict:
    """Restore the backend's state and the RNG from `path`; return its state.json."""
    state = json.loads((path / "state.json").read_text())
    backend.load(path, weights="model.safetensors", shards="ds",
                 optimizer_state=cache(lambda: torch.load(path / "optimizer.pt", weights_only=True)))
    torch.set_rng_state(torch.tensor(state["rng"], dtype=torch.uint8))
    return state


@contextmanager
def safe_deepspeed_load(engine) -> Iterator[None]:
    """DeepSpeed's checkpoint engine calls `torch.load(..., weights_only=False)`: a crafted checkpoint would run
    code. While `engine` loads ours, its checkpoint engine (and only it: `torch.load` itself is untouched) reads
    every file with `weights_only=True`, allowing only the plain classes its ZeRO optimizer states hold (found
    with `torch.serialization.get_unsafe_globals_in_checkpoint`: ZeRO-2 adds `fragment_address`)."""
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    reader = engine.checkpoint_engine

    def safe_load(path, map_location=None):
        with torch.serialization.safe_globals([LossScaler, DynamicLossScaler, ZeroStageEnum, fragment_address]):
            return torch.load(path, map_location=map_location, weights_only=True)

    reader.load = safe_load  # an attribute of this one object, shadowing its class's method
    try:
        yield
    finally:
        del reader.load
