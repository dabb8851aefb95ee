"""Where DeepSpeed builds its C++ ops on the CPU, and recovery from a build that was killed.

On the CPU, `deepspeed.init_distributed` compiles its shared-memory all-reduce op with torch's JIT loader. The
loader guards the build with a lock *file* that only the builder deletes: a build killed half-way (a timeout, a
session that ended, Ctrl-C at the wrong second) leaves the file behind, and every later process waits on it
forever, silently. Two defaults keep that from hanging a run:
- the build lives in the Python environment (`<sys.prefix>/torch_extensions`), so a new environment never
  inherits another's lock or a module built against another torch (a user's `TORCH_EXTENSIONS_DIR` wins);
- a lock whose build folder saw no write for 15 minutes is removed with a warning (a live build writes its
  object files as it goes; the CPU op takes about a minute on 2 cores)."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

STALE_LOCK_SECONDS = 15 * 60


def default_extensions_dir() -> Path:
    """`TORCH_EXTENSIONS_DIR` if the user set one, else `<sys.prefix>/torch_extensions`."""
    chosen = os.environ.get("TORCH_EXTENSIONS_DIR")
    return Path(chosen) if chosen else Path(sys.prefix) / "torch_extensions"


def stale_build_locks(root: Path, now: float, max_age_s: float = STALE_LOCK_SECONDS) -> list[Path]:
    """The `lock` files of the op builds under `root` (`<root>/<op>/lock`) whose folder saw no write for over
    `max_age_s`: a live build writes its object files as it goes, a long one (CUDA ops) included."""
    if not root.is_dir():
        return []
    return sorted(lock for lock in root.glob("*/lock") if now - last_write(lock.parent) > max_age_s)


def last_write(folder: Path) -> float:
    """The newest modification time of `folder` and the files in it."""
    return max([folder.stat().st_mtime, *(f.stat().st_mtime for f in folder.iterdir() if f.is_file())])


def prepare_extension_builds() -> Path | None:
    """Point torch's JIT builds at this environment and clear locks a killed build left; None when the folder
    cannot be written (then torch's own default stays, and nothing is removed)."""
    root = default_extensions_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(root, os.W_OK):
        return None
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(root))
    now = time.time()
    for lock in stale_build_locks(root, now):
        idle_min = (now - last_write(lock.parent)) / 60
        log.warning("removing %s: a build lock whose folder saw no write for %.0f min is left by a build that was "
                    "killed (a real build writes as it goes); without this every process would wait on it forever",
                    lock, idle_min)
        lock.unlink(missing_ok=True)
    return root
