"""Byte-stable writers: JSONL (one object per line, keys in insertion order) and a small block-style YAML.

The generator is stdlib only, so YAML is written by hand: strings are emitted as JSON strings, which are valid
YAML double-quoted scalars, so yaml.safe_load reads back exactly what was written.
"""

from __future__ import annotations

import json
from pathlib import Path


def write_jsonl(path: Path, rows: list[dict]) -> None:
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    path.write_text(text, encoding="utf-8", newline="\n")


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"cannot write {type(value).__name__} to YAML")


def _yaml_lines(value, indent: int) -> list[str]:
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:")
                lines += _yaml_lines(item, indent + 2)
            else:
                lines.append(f"{pad}{key}: {_scalar(item) if item != [] else '[]'}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                first, *rest = _yaml_lines(item, indent + 2)
                lines.append(f"{pad}- {first.lstrip()}")
                lines += rest
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    else:
        lines.append(pad + _scalar(value))
    return lines


def write_yaml(path: Path, data: dict, header: str) -> None:
    text = "".join(f"# {line}\n" for line in header.splitlines()) + "\n".join(_yaml_lines(data, 0)) + "\n"
    path.write_text(text, encoding="utf-8", newline="\n")
