"""A problem in a data file, located by file, row and field, and the error that carries a list of them."""

from __future__ import annotations

from dataclasses import dataclass

from chatalign.errors import DataError


@dataclass(frozen=True)
class Issue:
    """One problem: `str()` is `file:line: field: problem` (`file:item 3: ...` / `file:row 3: ...`).

    `line` is 1-based; `unit` says what it counts: physical lines of a text file ("line"), items of a JSON
    list ("item") or rows of a Parquet file / datasets folder ("row"). `field` is a dotted path into the
    raw row (`messages.2.role`, list indices 0-based); None when the problem is the whole row or file.
    """

    file: str
    line: int | None
    field: str | None
    problem: str
    unit: str = "line"

    @property
    def location(self) -> str:
        if self.line is None:
            return self.file
        where = str(self.line) if self.unit == "line" else f"{self.unit} {self.line}"
        return f"{self.file}:{where}"

    def __str__(self) -> str:
        head = f"{self.location}: {self.field}" if self.field else self.location
        return f"{head}: {self.problem}"


class BadDataError(DataError):
    """Raised with the issues found (at most `max_errors` of them listed; `more` counts the rest)."""

    def __init__(self, issues: list[Issue], more: int = 0):
        self.issues = list(issues)
        self.more = more
        lines = [str(i) for i in self.issues]
        if more:
            lines.append(f"... and {more} more")
        super().__init__("\n".join(lines))
