"""Anthropic HH-RLHF transcripts: `"\\n\\nHuman: ...\\n\\nAssistant: ..."` strings.

A preference row holds two full transcripts (`chosen`, `rejected`) that share every turn but the last
Assistant answer: the prompt is those shared turns (up to the last Human turn), the answers are the two
last Assistant texts. A conversation row holds one transcript (`text`, or `chosen` alone).
"""

from __future__ import annotations

import re
from typing import Any

from chatalign.data_schemas.adapted import Adapted, AdaptError, Loc, carry, dotted, unused_columns

# A speaker label opens the string or follows a blank line; the text up to the next label is the turn.
_TURN_SPLIT = re.compile(r"(?:^|\n\n)(Human|Assistant):")
_ROLES = {"Human": "user", "Assistant": "assistant"}
PREFERENCE_EXTRAS = ("strength", "chosen_safe", "rejected_safe", "category", "id", "source")
CONVERSATION_EXTRAS = ("id", "tags")


def parse_transcript(text: Any, field: str) -> list[tuple[str, str]]:
    """[(role, content), ...] with roles user/assistant; contents stripped. AdaptError names `field`."""
    if not isinstance(text, str):
        raise AdaptError(field, f"expected a Human/Assistant transcript string, got {type(text).__name__}")
    parts = _TURN_SPLIT.split(text)
    if len(parts) == 1:
        raise AdaptError(
            field, "not a Human/Assistant transcript: no '\\n\\nHuman:' or '\\n\\nAssistant:' label"
        )
    if parts[0].strip():
        raise AdaptError(field, f"text before the first 'Human:' label: {parts[0].strip()[:40]!r}")
    turns = [(_ROLES[parts[i]], parts[i + 1].strip()) for i in range(1, len(parts), 2)]
    if turns[0][0] != "user":
        raise AdaptError(field, "transcript must start with a 'Human:' turn")
    return turns


def _messages(turns: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in turns]


def preference_from_hh(row: dict[str, Any]) -> Adapted:
    sides: dict[str, list[tuple[str, str]]] = {}
    for side in ("chosen", "rejected"):
        if side not in row:
            raise AdaptError(side, "missing required field")
        turns = parse_transcript(row[side], side)
        if turns[-1][0] != "assistant":
            raise AdaptError(side, "transcript must end with an 'Assistant:' answer")
        sides[side] = turns
    chosen, rejected = sides["chosen"], sides["rejected"]
    if chosen[:-1] != rejected[:-1]:
        raise AdaptError(
            "rejected",
            "the turns before the last Assistant answer differ from chosen's "
            "(the prompt is the turns both transcripts share)",
        )
    data: dict[str, Any] = {
        "prompt": _messages(chosen[:-1]),
        "chosen": chosen[-1][1],
        "rejected": rejected[-1][1],
    }
    carry(row, PREFERENCE_EXTRAS, data)

    def locate(loc: Loc) -> str:
        if loc[0] == "prompt":
            return f"chosen (turn {loc[1] + 1})" if len(loc) > 1 and isinstance(loc[1], int) else "chosen"
        if loc[0] in sides:
            return f"{loc[0]} (turn {len(sides[loc[0]])})"
        return dotted(loc)

    return Adapted(data, locate, unused_columns(row, ("chosen", "rejected", *PREFERENCE_EXTRAS)))


def conversation_from_hh(row: dict[str, Any]) -> Adapted:
    field = "text" if "text" in row else "chosen"
    if field not in row:
        raise AdaptError("text", "missing required field (an HH conversation row has `text` or `chosen`)")
    turns = parse_transcript(row.get(field), field)
    data: dict[str, Any] = {"messages": _messages(turns)}
    carry(row, CONVERSATION_EXTRAS, data)

    def locate(loc: Loc) -> str:
        if loc[0] == "messages":
            return f"{field} (turn {loc[1] + 1})" if len(loc) > 1 and isinstance(loc[1], int) else field
        return dotted(loc)

    return Adapted(data, locate, unused_columns(row, (field, *CONVERSATION_EXTRAS)))
