"""Write canonical records as JSONL; convert outside formats; list every issue in a file."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from chatalign.data_schemas.file_output import json_line, write_lines_atomic
from chatalign.data_schemas.issues import BadDataError, Issue
from chatalign.data_schemas.readers import load_records, scan_rows
from chatalign.errors import ConfigError


def record_dict(item: BaseModel | dict[str, Any]) -> dict[str, Any]:
    """A record as plain JSON values, None fields left out (they are the defaults on reading back)."""
    if isinstance(item, BaseModel):
        return item.model_dump(mode="json", exclude_none=True)
    if isinstance(item, dict):
        return {k: v for k, v in item.items() if v is not None}
    raise TypeError(f"write_jsonl: expected records or dicts, got {type(item).__name__}")


def write_jsonl(path: str | os.PathLike, records: Iterable[BaseModel | dict[str, Any]]) -> int:
    """Write one JSON object per line, UTF-8, atomically (temp file + os.replace); returns the count."""
    return write_lines_atomic(path, (json_line(record_dict(r)) for r in records))


def convert_file(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    kind: str,
    fmt: str = "auto",
    *,
    on_error: str = "raise",
    quarantine: str | os.PathLike | None = None,
) -> int:
    """Read `src` (any supported file type and format), write canonical JSONL to `dst`; returns the count."""
    if Path(dst).suffix.lower() != ".jsonl":
        raise ConfigError(f"convert output {dst}: only .jsonl is written (canonical records, one per line)")
    result = load_records(src, kind, fmt=fmt, on_error=on_error, quarantine=quarantine)
    return write_jsonl(dst, result.records)


def kind_that_fits(path: str | os.PathLike, kind: str, fmt: str = "auto") -> str | None:
    """Another record kind every row of `path` is valid as, when no row is valid `kind` data (a file given with
    the wrong --kind); None when some rows are `kind` data (then their problems are the answer) or no kind fits."""
    from chatalign.data_schemas.records import KINDS

    try:
        if any(not scanned.issues for scanned in scan_rows(path, kind, fmt)):
            return None
    except BadDataError:
        return None
    return next((other for other in KINDS if other != kind and not validate_file(path, other, fmt)), None)


def validate_file(path: str | os.PathLike, kind: str, fmt: str = "auto") -> list[Issue]:
    """Every issue in `path` (no limit), in file order; a whole-file problem ends the list. Empty: all good."""
    issues: list[Issue] = []
    try:
        for scanned in scan_rows(path, kind, fmt):
            issues.extend(scanned.issues)
    except BadDataError as fatal:
        issues.extend(fatal.issues)
    return issues
