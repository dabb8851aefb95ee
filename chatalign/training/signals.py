"""Stopping a run cleanly on SIGTERM/SIGINT: the signal is noted, the running step (or PPO iteration) finishes
and is checkpointed, and the run ends with `Interrupted` (exit code 130: continue it with --resume)."""

from __future__ import annotations

import signal
from typing import Any

from chatalign.errors import UserError


class Interrupted(UserError):
    """SIGTERM/SIGINT: a checkpoint was saved and the run can be resumed."""

    exit_code = 130


class StopFlag:
    """While entered, SIGTERM and SIGINT set `signum` instead of stopping the process."""

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
