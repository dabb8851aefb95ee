"""What an adapter returns, and the error it raises for a row it cannot convert."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Loc = tuple[Any, ...]  # a pydantic error location in the canonical record: ("messages", 2, "role")


def dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


class AdaptError(Exception):
    """A row in an outside format that cannot be converted; `field` names the raw row's field."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass
class Adapted:
    """A canonical dict (still to be validated), a map from canonical locations back to the raw row's
    field names (so that an error names what the user can find in their file), and raw columns left out."""

    data: dict[str, Any]
    locate: Callable[[Loc], str] = dotted
    ignored: set[str] = field(default_factory=set)


def clean_messages(value: Any, field_name: str, ignored: set[str]) -> Any:
    """Keep `role` and `content` of each message (outside formats add `name`, `tool_calls`, ...).

    Anything that is not a list of objects is passed through for validation to report in place."""
    if not isinstance(value, list):
        return value
    out = []
    for m in value:
        if isinstance(m, dict):
            ignored.update(f"{field_name}[].{k}" for k in m if k not in ("role", "content"))
            out.append({k: m[k] for k in ("role", "content") if k in m})
        else:
            out.append(m)
    return out


def carry(row: dict[str, Any], names: tuple[str, ...], data: dict[str, Any]) -> None:
    """Copy canonical optional fields that an outside row may also have (`id`, `strength`, ...)."""
    for name in names:
        if row.get(name) is not None:
            data[name] = row[name]


def unused_columns(row: dict[str, Any], used: set[str] | tuple[str, ...]) -> set[str]:
    return {k for k in row if k not in used}
