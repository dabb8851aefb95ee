"""Our own prompt records that carry a `reference` answer, read as conversations: the prompt's messages, then
the reference as the assistant's answer. One file then serves both as evaluation prompts and as training
conversations (e.g. the safety step's replay of benign look-alikes), with no derived copy to keep in step."""

from __future__ import annotations

from typing import Any

from chatalign.data_schemas.adapted import (
    Adapted,
    AdaptError,
    Loc,
    carry,
    clean_messages,
    dotted,
    unused_columns,
)
from chatalign.data_schemas.records import Prompt

# Every field of a prompt record is allowed (those with no place in a conversation are left out); any other key
# is an error, as in our own canonical records: a misspelt field must not pass silently.
PROMPT_FIELDS = tuple(Prompt.model_fields)


def looks_like_prompt_with_reference(keys: set[str]) -> bool:
    return "messages" in keys and "reference" in keys


def _reference(row: dict[str, Any]) -> str:
    if row.get("reference") is None:
        raise AdaptError("reference", "missing required field: the answer a prompt row is trained with")
    if not isinstance(row["reference"], str):
        raise AdaptError("reference", f"expected text, got {type(row['reference']).__name__}")
    return row["reference"]


def conversation_from_prompt_reference(row: dict[str, Any], extras: tuple[str, ...]) -> Adapted:
    unknown = sorted(unused_columns(row, (*PROMPT_FIELDS, *extras)))
    if unknown:
        raise AdaptError(unknown[0], "not a field of a prompt record (misspelt?)")
    ignored: set[str] = set()
    if "messages" not in row:
        raise AdaptError("messages", "missing required field")
    prompt = clean_messages(row["messages"], "messages", ignored)
    answer = _reference(row)
    if not isinstance(prompt, list) or not prompt:
        raise AdaptError("messages", "expected a non-empty list of {role, content} messages")
    last = prompt[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        raise AdaptError(f"messages.{len(prompt) - 1}.role", "a prompt must end with a user message")
    data: dict[str, Any] = {"messages": [*prompt, {"role": "assistant", "content": answer}]}
    carry(row, extras, data)

    def locate(loc: Loc) -> str:
        # the appended answer's problems are the reference's
        return "reference" if loc[:2] == ("messages", len(prompt)) else dotted(loc)

    return Adapted(data, locate, ignored)
