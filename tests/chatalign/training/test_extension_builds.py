"""A build lock left by a killed op build is removed instead of hanging every later process; a lock as young
as a real build is left alone; the builds live in the Python environment unless the user chose a folder."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from chatalign.training.extension_builds import (
    default_extensions_dir,
    prepare_extension_builds,
    stale_build_locks,
)


def lock_aged(root: Path, op: str, age_s: float, now: float) -> Path:
    """A build folder with a lock and an object file, nothing written in it for `age_s`."""
    lock = root / op / "lock"
    lock.parent.mkdir(parents=True)
    for path in (lock, lock.parent / "shm.o", lock.parent):
        path.touch()
        os.utime(path, (now - age_s, now - age_s))
    return lock


def test_only_locks_older_than_a_real_build_are_stale(tmp_path):
    now = time.time()
    old = lock_aged(tmp_path, "deepspeed_shm_comm", 20 * 60, now)
    lock_aged(tmp_path, "cpu_adam", 60, now)
    (tmp_path / "no_lock_op").mkdir()
    assert stale_build_locks(tmp_path, now) == [old]
    assert stale_build_locks(tmp_path, now, max_age_s=30) == sorted([old, tmp_path / "cpu_adam" / "lock"])
    assert stale_build_locks(tmp_path / "missing", now) == []


def test_a_lock_is_live_while_its_build_writes(tmp_path):
    now = time.time()
    lock = lock_aged(tmp_path, "fused_adam", 40 * 60, now)  # a long build: the lock is old...
    os.utime(lock.parent / "shm.o", (now - 30, now - 30))  # ...but an object file was written 30 s ago
    assert stale_build_locks(tmp_path, now) == []


def test_prepare_removes_a_killed_builds_lock_and_keeps_a_live_one(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    now = time.time()
    old = lock_aged(tmp_path, "deepspeed_shm_comm", 3600, now)
    live = lock_aged(tmp_path, "cpu_adam", 10, now)
    with caplog.at_level(logging.WARNING):
        assert prepare_extension_builds() == tmp_path
    assert not old.exists() and live.exists()
    assert str(old) in caplog.text and "no write for 60 min" in caplog.text
    assert os.environ["TORCH_EXTENSIONS_DIR"] == str(tmp_path)


def test_builds_default_to_the_python_environment(monkeypatch):
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR", raising=False)
    assert default_extensions_dir() == Path(sys.prefix) / "torch_extensions"
