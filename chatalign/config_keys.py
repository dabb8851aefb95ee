"""Every recipe key of a config class, with its type, default and description, for `--show-keys`: the
reference a user reads before writing a recipe, taken from the classes that validate it (never out of date)."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined


def type_text(annotation: Any) -> str:
    """A short readable type: `int`, `str | None`, `list[SFTSource]`, `'sft' | 'reward'`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin is typing.Annotated:
        return type_text(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join("None" if a is type(None) else type_text(a) for a in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(type_text(a) for a in args)}]"
    return getattr(annotation, "__name__", str(annotation))


def section_of(annotation: Any) -> type[BaseModel] | None:
    """The config class a field holds directly (a nested section), else None (lists of models are values)."""
    for a in (annotation, *typing.get_args(annotation)):
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
    return None


def default_text(field) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "(required)"
    value = field.default_factory() if field.default is PydanticUndefined else field.default
    if isinstance(value, BaseModel):
        return ""
    return json.dumps(value, default=str)


def config_keys(model_cls: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(dotted key, type, default, description) of every leaf key, sections expanded in place."""
    rows = []
    for name, field in model_cls.model_fields.items():
        key = f"{prefix}{name}"
        section = section_of(field.annotation)
        if section is not None and typing.get_origin(field.annotation) is None:
            rows += config_keys(section, f"{key}.")
            continue
        rows.append((key, type_text(field.annotation), default_text(field), field.description or ""))
    return rows


def show_keys(model_cls: type[BaseModel]) -> str:
    rows = config_keys(model_cls)
    width = max(len(k) for k, *_ in rows)
    lines = []
    for key, kind, default, text in rows:
        lines.append(f"{key:<{width}}  {kind}" + (f" = {default}" if default else ""))
        if text:
            lines.append(f"{'':<{width}}    {text}")
    return "\n".join(lines)
