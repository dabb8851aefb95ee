"""Load a data file (or folder) into validated canonical records.

Every row goes through the file's adapter (outside format -> canonical dict), then through the canonical
model. A bad row is an `Issue` naming file, line and field. By default the load fails listing the first
`max_errors` issues; with `on_error="skip"` the bad rows (raw, with their problems) go to a quarantine
JSONL file instead, so that nothing is dropped silently. Problems with a whole file (empty, unreadable,
unsupported type) always fail the load.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from chatalign.data_schemas.adapted import Adapted, AdaptError
from chatalign.data_schemas.adapters import ADAPTERS, detect_format
from chatalign.data_schemas.file_output import json_line, write_lines_atomic
from chatalign.data_schemas.issues import BadDataError, Issue
from chatalign.data_schemas.records import KINDS, Record
from chatalign.data_schemas.sources import RawRow, iter_rows
from chatalign.errors import ConfigError

ON_ERROR = ("raise", "skip")
# No example of any stage needs more text than this in one row (1 MiB is ~250k tokens, beyond every model's
# context); a bigger row is a broken export, and its tokens and batches would take memory out of all measure.
MAX_ROW_BYTES = 1 << 20


@dataclass
class LoadResult:
    records: list[Record]
    skipped: int = 0
    issues: list[Issue] = field(default_factory=list)  # the skipped rows' issues (on_error="skip")
    formats: dict[str, str] = field(default_factory=dict)  # file -> format its rows were read as
    ignored_fields: dict[str, list[str]] = field(default_factory=dict)  # file -> outside columns left out


@dataclass
class ScannedRow:
    raw: RawRow
    record: Record | None
    issues: list[Issue]


def check_kind_and_format(kind: str, fmt: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"unknown record kind {kind!r}: expected one of {', '.join(KINDS)}")
    formats = ("auto", *ADAPTERS[kind])
    if fmt not in formats:
        raise ConfigError(f"unknown format {fmt!r} for {kind} data: expected one of {', '.join(formats)}")


def _problem_text(err: dict[str, Any], kind: str) -> str:
    if err["type"] == "missing":
        return "missing required field"
    if err["type"] == "extra_forbidden":
        if len(err["loc"]) == 1:
            fields = ", ".join(KINDS[kind].model_fields)
            return f"unknown field (a typo? a {kind} has: {fields})"
        return "unknown field (a message has only role and content)"
    return err["msg"]


def _validation_issues(exc: ValidationError, raw: RawRow, adapted: Adapted, kind: str) -> list[Issue]:
    issues = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        at = (err.get("ctx") or {}).get("at")
        if at:  # a turn-order problem names the message below the list field, see records.py
            loc += tuple(int(p) if p.isdigit() else p for p in str(at).split("."))
        name = adapted.locate(loc) if loc else None
        issues.append(Issue(raw.file, raw.line, name, _problem_text(err, kind), raw.unit))
    return issues


def scan_rows(
    path: str | os.PathLike,
    kind: str,
    fmt: str = "auto",
    formats: dict[str, str] | None = None,
    ignored: dict[str, set[str]] | None = None,
) -> Iterator[ScannedRow]:
    """Each row with its record (None when bad) and issues; fills `formats`/`ignored` per file as it goes.

    Raises BadDataError for a problem with a whole file."""
    check_kind_and_format(kind, fmt)
    model = KINDS[kind]
    formats = {} if formats is None else formats
    ignored = {} if ignored is None else ignored
    first_with_id: dict[str, tuple[str, int, str]] = {}  # id -> (file, line, unit) of its first row
    for raw in iter_rows(path):

        def bad(problem: str, name: str | None = None, raw: RawRow = raw) -> ScannedRow:
            return ScannedRow(raw, None, [Issue(raw.file, raw.line, name, problem, raw.unit)])

        size = row_bytes(raw)
        if size > MAX_ROW_BYTES:
            yield bad(f"row is {size / 2**20:.1f} MiB, over the {MAX_ROW_BYTES / 2**20:g} MiB limit per row "
                      "(far beyond any model's context: split or drop it)")
            continue
        if raw.error is not None:
            yield bad(raw.error)
            continue
        if not isinstance(raw.data, dict):
            shown = "null" if raw.data is None else type(raw.data).__name__
            yield bad(f"expected a JSON object, got {shown}")
            continue
        if raw.file not in formats:  # the first object of each file decides its format
            formats[raw.file] = detect_format(kind, raw.data) if fmt == "auto" else fmt
        try:
            adapted = ADAPTERS[kind][formats[raw.file]](raw.data)
        except AdaptError as exc:
            yield bad(exc.problem, exc.field)
            continue
        if adapted.ignored:
            ignored.setdefault(raw.file, set()).update(adapted.ignored)
        try:
            record = model.model_validate(adapted.data)
        except ValidationError as exc:
            yield ScannedRow(raw, None, _validation_issues(exc, raw, adapted, kind))
            continue
        here = (raw.file, raw.line, raw.unit)
        first = first_with_id.setdefault(record.id, here) if record.id is not None else here
        if first != here:
            yield bad(f"{record.id!r} repeats the id of {_place(first, raw.file)} (ids must be unique: whatever "
                      "is keyed by id would merge the two rows)", "id")
            continue
        yield ScannedRow(raw, record, [])


def row_bytes(raw: RawRow) -> int:
    """The row's size as written (JSONL), else as JSON (other formats: an estimate, values as text)."""
    if raw.size is not None:
        return raw.size
    return len(json.dumps(raw.data, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass"))


def _place(first: tuple[str, int, str], file: str) -> str:
    """Where the row (file, line, unit) is, as seen from a row of `file`: `line 3` there, else `other:line 3`."""
    return f"{first[2]} {first[1]}" if first[0] == file else f"{first[0]}:{first[2]} {first[1]}"


def _quarantine_line(scanned: ScannedRow) -> str:
    raw = scanned.raw
    entry: dict[str, Any] = {
        "source": scanned.issues[0].location,
        "problems": [str(i)[len(i.location) + 2 :] for i in scanned.issues],
    }
    if raw.error is not None:
        entry["raw"] = raw.raw_text
    else:
        entry["row"] = raw.data
    try:
        return json_line(entry)
    except (ValueError, RecursionError):  # a row too deeply nested to write back: keep its text form
        entry["row"] = repr(raw.data)[:100_000]
        return json_line(entry)


def _check_load_options(on_error: str, quarantine, max_errors: int | None) -> None:
    if on_error not in ON_ERROR:
        raise ConfigError(f"on_error={on_error!r}: expected 'raise' or 'skip'")
    if on_error == "skip" and quarantine is None:
        raise ConfigError("on_error='skip' needs a quarantine file, so that skipped rows are kept, not lost")
    if max_errors is not None and max_errors < 1:
        raise ConfigError(f"max_errors={max_errors}: must be at least 1 (or None for no limit)")


@dataclass
class _Collector:
    """Gathers a load's rows into `result`: the good records, and the bad rows' issues (those a failure shows)
    or quarantine lines."""

    result: LoadResult
    on_error: str
    max_errors: int | None
    total_issues: int = 0
    shown: list[Issue] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)

    def add(self, scanned: ScannedRow) -> None:
        if scanned.record is not None:
            if not self.total_issues or self.on_error == "skip":
                self.result.records.append(scanned.record)
            return
        self.total_issues += len(scanned.issues)
        self.result.skipped += 1
        if self.on_error == "skip":
            self.result.issues.extend(scanned.issues)
            self.quarantined.append(_quarantine_line(scanned))
        else:
            self.result.records.clear()  # the load will fail: stop holding records
            self.shown.extend(scanned.issues[: max(0, (self.max_errors or self.total_issues) - len(self.shown))])

    def with_fatal(self, error: BadDataError) -> BadDataError:
        """The error for a whole-file problem, listing the row issues met before it first."""
        before = self.shown if self.on_error == "raise" else self.result.issues[: self.max_errors or None]
        return BadDataError(before + error.issues, max(0, self.total_issues - len(before)))


def load_records(
    path: str | os.PathLike,
    kind: str,
    *,
    fmt: str = "auto",
    on_error: str = "raise",
    quarantine: str | os.PathLike | None = None,
    max_errors: int | None = 20,
) -> LoadResult:
    """Read and validate every row of `path` as `kind` records (see the module docstring).

    on_error="raise": raise BadDataError (a DataError) listing up to `max_errors` issues, "... and N more".
    on_error="skip": write each bad row with its problems to `quarantine` (required; written atomically at
    the end, also when empty) and return the good records, `skipped` counting the rest.
    """
    _check_load_options(on_error, quarantine, max_errors)
    result = LoadResult([])
    ignored: dict[str, set[str]] = {}
    rows = _Collector(result, on_error, max_errors)
    try:
        for scanned in scan_rows(path, kind, fmt, result.formats, ignored):
            rows.add(scanned)
    except BadDataError as fatal:
        raise rows.with_fatal(fatal) from None
    result.ignored_fields = {f: sorted(names) for f, names in ignored.items()}
    if on_error == "raise":
        if rows.total_issues:
            raise BadDataError(rows.shown, rows.total_issues - len(rows.shown))
        return result
    write_lines_atomic(quarantine, rows.quarantined)
    if not result.records:
        problem = f"no valid rows: all {result.skipped} rows were bad (quarantined in {quarantine})"
        raise BadDataError([Issue(str(path), None, None, problem)])
    return result
