"""Run one benchmark setting in a fresh interpreter and measure that child's peak memory alone."""

from __future__ import annotations

import os
import subprocess


def run_measured(cmd: list[str]) -> tuple[str, int, float]:
    """(stdout, exit code, peak RSS in GiB) of `cmd`; the peak comes from wait4 on that child alone."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
    return out, proc.returncode, round(usage.ru_maxrss / 2**20, 3)  # ru_maxrss is in KiB on Linux
