"""Errors that are the user's to fix: the CLI prints them as one line and exits 2, no traceback."""

from __future__ import annotations

import sys


class UserError(Exception):
    """A mistake in what the user gave us (config, data, paths); the message says what and where."""

    exit_code = 2


class ConfigError(UserError):
    """A bad recipe: unknown key, wrong type, impossible combination, missing file."""


class DataError(UserError):
    """A malformed data file; the message names file, line and field."""


class RunError(UserError):
    """A run directory problem: busy (locked), changed inputs, nothing to resume."""


class DiskFullError(RunError):
    """The disk filled up (ENOSPC, or a quota) while a run wrote a file: what was written before is intact."""

    exit_code = 4


def disk_full(exc: OSError) -> DiskFullError | None:
    """The one-line error for a full disk (None for any other OSError, which stays a bug with a traceback)."""
    import errno

    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    where = f" while writing {exc.filename}" if exc.filename else ""
    return DiskFullError(f"no space left on the device{where}. Every file is written whole or not at all, so "
                         "the run directory holds what was written before: free some space and run the same "
                         "command again (a stage command with --resume; a pipeline resumes by itself)")


def print_error(exc: BaseException) -> int:
    """What the CLI does with a UserError or an interrupt: one line on stderr, no traceback; the exit code."""
    if isinstance(exc, KeyboardInterrupt):
        print("chatalign: interrupted", file=sys.stderr)
        return 130
    print(f"chatalign: error: {exc}", file=sys.stderr)
    return getattr(exc, "exit_code", 2)
