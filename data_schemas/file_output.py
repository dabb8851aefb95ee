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


def umask_mode(directory: bool = False) -> int:
    """The mode open() or mkdir() gives under this process's umask: temp files from mkstemp (0600) and mkdtemp
    (0700) renamed into place would otherwise be unreadable to the rest of a team on a shared file system."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def give_umask_modes(path: str | os.PathLike) -> None:
    """Set `path` (a file, or a folder and all below it) to the umask's modes, before it is renamed into place:
    some writers (safetensors) create their files 0600 whatever the umask."""
    path = Path(path)
    os.chmod(path, umask_mode(directory=path.is_dir()))
    if path.is_dir():
        for p in path.rglob("*"):
            if not p.is_symlink():
                os.chmod(p, umask_mode(directory=p.is_dir()))


def temp_file_beside(path: Path, prefix: str, suffix: str = "") -> tuple[int, str]:
    """(fd, name) of a new temp file in `path`'s folder with the umask's mode, to be renamed onto `path`."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    os.chmod(tmp, umask_mode())
    return fd, tmp


def temp_dir_in(parent: Path, prefix: str) -> str:
    """A new temp folder in `parent` with the umask's mode, to be renamed into place."""
    tmp = tempfile.mkdtemp(prefix=prefix, dir=parent)
    os.chmod(tmp, umask_mode(directory=True))
    return tmp


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
    fd, tmp = temp_file_beside(target, f".{target.name}.", ".tmp")
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
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return count
