"""Writing output files: atomically (readers see the old file or the whole new one), one JSON per line."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def fault_disk_full(path: str | os.PathLike) -> None:
    """`CHATALIGN_FAULT_ENOSPC_AT=TEXT` makes every write whose final path contains TEXT fail as a full disk
    would (the reliability tests inject it at each write path); unset, nothing happens."""
    text = os.environ.get("CHATALIGN_FAULT_ENOSPC_AT")
    if text and text in str(path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def json_line(obj: Any) -> str:
    """One JSON object on one line, non-ASCII kept readable; values JSON cannot hold are written as text."""
    text = json.dumps(obj, ensure_ascii=False, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: escape it, so the file stays valid UTF-8
        text = json.dumps(obj, ensure_ascii=True, default=str)
    return text


def write_lines_atomic(path: str | os.PathLike, lines: Iterable[str]) -> int:
    """Write `lines` (each without its newline) as UTF-8 via a temp file in the same folder + os.replace."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = target.stat().st_mode & 0o777 if target.exists() else 0o644  # mkstemp would leave 0600
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            for line in lines:
                f.write(line)
                f.write("\n")
                count += 1
            f.flush()
            os.fsync(f.fileno())
        fault_disk_full(target)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return count
