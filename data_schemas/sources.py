"""Raw rows out of data files: JSONL, JSON, Parquet, a `datasets` save_to_disk folder, a folder of files, or a
Hub dataset split (`hf://datasets/...`, chatalign.data_schemas.hub).

A problem confined to one row (a line that is not JSON or not UTF-8) comes back as a `RawRow` with
`error` set, so the loader can skip and quarantine it; a problem with the whole file (empty, unreadable,
not JSON at all) raises `BadDataError` at once. pyarrow and datasets are imported only when needed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatalign.data_schemas.issues import BadDataError, Issue

FILE_SUFFIXES = (".jsonl", ".json", ".parquet")
DATASETS_MARKERS = ("state.json", "dataset_info.json", "dataset_dict.json")
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# A JSON file {"messages": [...]} is one record, not a wrapper {"data": [...]} around a list of records.
RECORD_LIST_FIELDS = ("messages", "conversations", "prompt", "chosen", "rejected", "tags")


@dataclass
class RawRow:
    file: str
    line: int
    unit: str  # "line" | "item" | "row", see Issue
    data: Any = None
    error: str | None = None  # set when the row could not be read at all
    raw_text: str | None = None  # the unreadable line, kept for the quarantine file
    size: int | None = None  # bytes of the row as written (JSONL); None: measured on `data` when needed


def _fatal(file: str | Path, problem: str, line: int | None = None, unit: str = "line") -> BadDataError:
    return BadDataError([Issue(str(file), line, None, problem, unit)])


def iter_rows(path: str | os.PathLike) -> Iterator[RawRow]:
    """Every row of a data file or folder (or Hub dataset split), numbered from 1 within its own file."""
    from chatalign.data_schemas.hub import is_hub_spec, iter_hub_rows

    if is_hub_spec(path):  # before Path(): it would fold hf:// into hf:/
        for line, row in iter_hub_rows(str(path)):
            yield RawRow(str(path), line, "row", data=drop_nulls(row))
        return
    p = Path(path)
    if p.is_dir():
        yield from _iter_folder(p)
    elif p.is_file():
        yield from _iter_file(p)
    else:
        raise _fatal(p, "no such file or folder")


def _iter_file(p: Path) -> Iterator[RawRow]:
    suffix = p.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            yield from _iter_jsonl(p)
            return
        if suffix == ".gz" and Path(p.stem).suffix.lower() in (".jsonl", ".ndjson"):
            yield from _iter_jsonl(p, gzip_compressed=True)
            return
        if suffix == ".json":
            yield from _iter_json(p)
            return
    except OSError as exc:  # permissions, a file vanishing mid-read, I/O errors
        raise _fatal(p, f"cannot read: {exc.strerror or exc}") from None
    if suffix == ".parquet":
        yield from _iter_parquet(p)
    else:
        raise _fatal(
            p,
            f"unsupported file type {suffix or '(none)'!r}: expected .jsonl, .jsonl.gz, .json, .parquet "
            "or a folder saved by datasets' save_to_disk",
        )


def _iter_folder(p: Path) -> Iterator[RawRow]:
    if any((p / m).is_file() for m in DATASETS_MARKERS):
        yield from _iter_hf_dataset(p)
        return
    files = sorted(
        f
        for f in p.rglob("*")
        if f.is_file()
        and (f.suffix.lower() in FILE_SUFFIXES or f.name.lower().endswith((".jsonl.gz", ".ndjson.gz")))
        and not any(part.startswith(".") for part in f.relative_to(p).parts)
    )
    if not files:
        raise _fatal(
            p, "folder holds no .jsonl, .jsonl.gz, .json or .parquet files and is not a datasets save_to_disk folder"
        )
    for f in files:
        yield from _iter_file(f)


def _json_problem(exc: ValueError | RecursionError, text: str) -> str:
    if isinstance(exc, RecursionError):
        return "invalid JSON: nested too deeply"
    if isinstance(exc, json.JSONDecodeError):
        # A string still open at the end also means the text stopped early.
        cut = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        return f"invalid JSON: {exc.msg} (column {exc.colno})" + (", cut short?" if cut else "")
    return f"invalid JSON: {exc}"  # e.g. an integer literal longer than Python's 4300-digit limit


def _iter_jsonl(p: Path, gzip_compressed: bool = False) -> Iterator[RawRow]:
    import gzip
    import zlib

    file = str(p)
    with (gzip.open(p, "rb") if gzip_compressed else open(p, "rb")) as f:
        try:
            yield from _jsonl_rows(f, file)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:  # streamed: a bad block ends the file there
            raise _fatal(file, f"not a readable gzip file: {exc}") from None


def _jsonl_rows(f, file: str) -> Iterator[RawRow]:
    """Rows of an open binary JSON Lines stream (plain or decompressed), numbered by line."""
    seen_row = False
    for n, raw in enumerate(f, 1):
        if n == 1:
            if raw.startswith(UTF16_BOMS):
                raise _fatal(file, "file is UTF-16 text: convert it to UTF-8", 1)
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if not raw.strip():
            continue  # blank lines (a trailing newline, spacing) are not rows
        seen_row = True
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            shown = raw.decode("utf-8", "backslashreplace").rstrip("\r\n")
            yield RawRow(
                file,
                n,
                "line",
                error=f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line)",
                raw_text=shown,
                size=len(raw),
            )
            continue
        text = text.rstrip("\r\n")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            yield RawRow(file, n, "line", error=_json_problem(exc, text), raw_text=text, size=len(raw))
            continue
        yield RawRow(file, n, "line", data=data, size=len(raw))
    if not seen_row:
        raise _fatal(file, "empty file: no rows", 1)


def _iter_json(p: Path) -> Iterator[RawRow]:
    file = str(p)
    data = p.read_bytes()
    if not data.strip():
        raise _fatal(file, "empty file: no rows", 1)
    if data.startswith(UTF16_BOMS):
        raise _fatal(file, "file is UTF-16 text: convert it to UTF-8", 1)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _fatal(file, f"not UTF-8 text (byte 0x{data[exc.start]:02x})", line) from None
    try:
        top = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = (
            " (several JSON values: if this is JSON Lines, name it .jsonl)" if exc.msg == "Extra data" else ""
        )
        raise _fatal(file, _json_problem(exc, text) + hint, exc.lineno) from None
    except (ValueError, RecursionError) as exc:
        raise _fatal(file, _json_problem(exc, text), 1) from None
    if isinstance(top, dict) and len(top) == 1 and isinstance(next(iter(top.values())), list):
        if next(iter(top)) in RECORD_LIST_FIELDS:
            raise _fatal(
                file, "expected a list of records; this looks like a single record: put it in a list", 1
            )
        top = next(iter(top.values()))
    if not isinstance(top, list):
        raise _fatal(
            file, 'expected a list of objects, or an object with a single list field like {"data": [...]}', 1
        )
    if not top:
        raise _fatal(file, "empty file: no rows (the list is empty)", 1)
    for i, item in enumerate(top, 1):
        yield RawRow(file, i, "item", data=item)


def drop_nulls(value: Any) -> Any:
    """Columnar formats cannot leave a field out of one row: a null there means "absent"."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def _iter_parquet(p: Path) -> Iterator[RawRow]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = str(p)
    try:
        pf = pq.ParquetFile(p)
        if pf.metadata.num_rows == 0:
            raise _fatal(file, "empty file: no rows", unit="row")
        n = 0
        for batch in pf.iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                n += 1
                yield RawRow(file, n, "row", data=drop_nulls(row))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _fatal(file, f"not a readable Parquet file: {exc}") from None


def _iter_hf_dataset(p: Path) -> Iterator[RawRow]:
    import datasets

    file = str(p)
    try:
        ds = datasets.load_from_disk(file)
    except (
        Exception
    ) as exc:  # any failure inside datasets means the same thing to the user: unreadable folder
        raise _fatal(file, f"cannot load this datasets folder: {type(exc).__name__}: {exc}") from None
    if isinstance(ds, datasets.DatasetDict):
        if len(ds) == 0:
            raise _fatal(file, "empty dataset: no splits")
        if len(ds) > 1:
            splits = ", ".join(ds)
            raise _fatal(
                file, f"holds the splits {splits}: point at one split's folder, e.g. {p / next(iter(ds))}"
            )
        ds = next(iter(ds.values()))
    if len(ds) == 0:
        raise _fatal(file, "empty dataset: no rows", unit="row")
    for i, row in enumerate(ds, 1):
        yield RawRow(file, i, "row", data=drop_nulls(row))
