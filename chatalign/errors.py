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


def print_error(exc: BaseException) -> int:
    """What the CLI does with a UserError or an interrupt: one line on stderr, no traceback; the exit code."""
    if isinstance(exc, KeyboardInterrupt):
        print("chatalign: interrupted", file=sys.stderr)
        return 130
    print(f"chatalign: error: {exc}", file=sys.stderr)
    return getattr(exc, "exit_code", 2)
