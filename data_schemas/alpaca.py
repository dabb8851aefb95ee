"""Alpaca-style instruction data (`instruction`, optional `input`, `output`; an optional `system`): one user
turn (the instruction, then the input after a blank line) and the answer; as prompts, the user turn alone."""

from __future__ import annotations

from typing import Any

from chatalign.data_schemas.adapted import Adapted, AdaptError, Loc, carry, dotted, unused_columns

FIELDS = ("instruction", "input", "output", "system")


def _text(row: dict[str, Any], name: str, required: bool) -> str:
    value = row.get(name)
    if value is None:
        if required:
            raise AdaptError(name, "missing required field")
        return ""
    if not isinstance(value, str):
        raise AdaptError(name, f"expected text, got {type(value).__name__}")
    return value


def _user_turn(row: dict[str, Any]) -> list[dict[str, str]]:
    instruction, extra = _text(row, "instruction", True), _text(row, "input", False)
    system = _text(row, "system", False)
    user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    return ([{"role": "system", "content": system}] if system.strip() else []) + [{"role": "user", "content": user}]


def _locate(row: dict[str, Any]):
    has_system = bool(isinstance(row.get("system"), str) and row["system"].strip())

    def locate(loc: Loc) -> str:
        if loc[0] != "messages" or len(loc) < 2:
            return dotted(loc)
        index = loc[1] - has_system if isinstance(loc[1], int) else loc[1]
        return {-1: "system", 0: "instruction", 1: "output"}.get(index, dotted(loc))

    return locate


def conversation_from_alpaca(row: dict[str, Any], extras: tuple[str, ...]) -> Adapted:
    messages = _user_turn(row) + [{"role": "assistant", "content": _text(row, "output", True)}]
    data: dict[str, Any] = {"messages": messages}
    carry(row, extras, data)
    return Adapted(data, _locate(row), unused_columns(row, (*FIELDS, *extras)))


def prompt_from_alpaca(row: dict[str, Any], extras: tuple[str, ...]) -> Adapted:
    data: dict[str, Any] = {"messages": _user_turn(row)}
    carry(row, extras, data)
    return Adapted(data, _locate(row), unused_columns(row, ("instruction", "input", "system", *extras)))


def looks_like_alpaca(keys: set[str]) -> bool:
    return "instruction" in keys and ("output" in keys or "input" in keys)
