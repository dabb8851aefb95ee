"""Outside data formats -> canonical record dicts (validated afterwards by the models in records.py).

Formats, per kind (`fmt=`; "auto" picks one per file from its first JSON-object row, see `detect_format`):

- canonical: our own records, field for field; an unknown key is an error.
- trl: TRL's conversational / standard formats. Conversations: `messages`. Preferences: `chosen` and
  `rejected` as message lists sharing their earlier turns (the prompt is that common prefix), or a
  separate `prompt` (string or messages) with `chosen`/`rejected` as strings or message lists (a list may
  be the answer alone, or the whole dialogue starting with the prompt). Prompts: `prompt` or `messages`.
  Columns we have no use for are ignored (and listed in `LoadResult.ignored_fields`).
- hh: Anthropic HH-RLHF transcripts (see hh_transcripts.py).
- ultrafeedback: scored pairs `prompt`, `chosen`, `rejected`, `score_chosen`, `score_rejected` (answers as
  strings or message lists, like trl); the strength comes from the score gap, see `SCORE_GAP_THRESHOLDS`.
- sharegpt (conversations only): `conversations: [{from: human|gpt|system, value}]`.
- prompt_reference (conversations only): our prompt records with a `reference` answer, which becomes the
  assistant's turn (see prompt_reference.py); picked by "auto" for rows with `messages` and `reference`.

A plain-string prompt becomes `[{"role": "user", "content": prompt}]`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
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
from chatalign.data_schemas.alpaca import conversation_from_alpaca, looks_like_alpaca, prompt_from_alpaca
from chatalign.data_schemas.hh_transcripts import conversation_from_hh, preference_from_hh
from chatalign.data_schemas.prompt_reference import (
    conversation_from_prompt_reference,
    looks_like_prompt_with_reference,
)
from chatalign.data_schemas.records import KINDS, Strength

EXTRAS = {
    "conversation": ("id", "tags"),
    "preference": ("strength", "chosen_safe", "rejected_safe", "category", "id", "source"),
    "prompt": ("is_safety", "risk_category", "id", "check", "tags"),
}

# UltraFeedback-style pairs: the strength is the first label whose minimum gap
# (score_chosen - score_rejected) is reached: gap >= 3 significantly_better, >= 2 better,
# >= 1 slightly_better, > 0 negligibly_better; a gap of exactly 0 is `unsure`; a negative gap is an error.
# The thresholds suit UltraFeedback's 1-10 scores; a row's own `strength` label, if given, wins.
SCORE_GAP_THRESHOLDS: dict[Strength, float] = {
    Strength.significantly_better: 3.0,
    Strength.better: 2.0,
    Strength.slightly_better: 1.0,
    Strength.negligibly_better: 0.0,  # exclusive: only a positive gap
}


def strength_from_gap(gap: float) -> Strength:
    """Preference strength from a score gap, by SCORE_GAP_THRESHOLDS (gap must be >= 0)."""
    if gap == 0:
        return Strength.unsure
    for strength, minimum in SCORE_GAP_THRESHOLDS.items():
        if gap >= minimum:
            return strength
    raise ValueError(f"negative score gap {gap}")


def _shown(value: Any) -> str:
    """A short rendering of a bad value for a message (never the repr of a huge or deeply nested one)."""
    if isinstance(value, str | int | float | bool) or value is None:
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    return f"a {type(value).__name__}"


def canonical(row: dict[str, Any]) -> Adapted:
    return Adapted(dict(row))


# ---- conversations -----------------------------------------------------------------------------------


def conversation_from_trl(row: dict[str, Any]) -> Adapted:
    ignored = unused_columns(row, ("messages", *EXTRAS["conversation"]))
    data: dict[str, Any] = {}
    if "messages" in row:
        data["messages"] = clean_messages(row["messages"], "messages", ignored)
    carry(row, EXTRAS["conversation"], data)
    return Adapted(data, ignored=ignored)


_SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
}
_SHAREGPT_KEYS = {"role": "from", "content": "value"}


def conversation_from_sharegpt(row: dict[str, Any]) -> Adapted:
    turns = row.get("conversations")
    if "conversations" not in row:
        raise AdaptError("conversations", "missing required field")
    if not isinstance(turns, list):
        raise AdaptError(
            "conversations", f"expected a list of {{from, value}} turns, got {type(turns).__name__}"
        )
    ignored = unused_columns(row, ("conversations", *EXTRAS["conversation"]))
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise AdaptError(f"conversations.{i}", "expected an object with 'from' and 'value'")
        speaker = turn.get("from")
        if not isinstance(speaker, str) or speaker not in _SHAREGPT_ROLES:
            raise AdaptError(
                f"conversations.{i}.from",
                f"unknown speaker {_shown(speaker)} (expected human, gpt or system)",
            )
        ignored.update(f"conversations[].{k}" for k in turn if k not in ("from", "value"))
        message = {"role": _SHAREGPT_ROLES[speaker]}
        if "value" in turn:
            message["content"] = turn["value"]
        messages.append(message)
    data: dict[str, Any] = {"messages": messages}
    carry(row, EXTRAS["conversation"], data)

    def locate(loc: Loc) -> str:
        if loc[0] != "messages":
            return dotted(loc)
        rest = [_SHAREGPT_KEYS.get(part, part) if isinstance(part, str) else part for part in loc[1:]]
        return dotted(("conversations", *rest))

    return Adapted(data, locate, ignored)


# ---- preferences -------------------------------------------------------------------------------------


def _split_answer(value: list[Any], side: str, ignored: set[str]) -> tuple[list[Any], Any]:
    """A message list ending with the assistant's answer -> (earlier messages, answer content)."""
    if not value:
        raise AdaptError(side, "empty message list: expected the assistant's answer")
    messages = clean_messages(value, side, ignored)
    k, last = len(messages) - 1, messages[-1]
    if not isinstance(last, dict):
        raise AdaptError(f"{side}.{k}", "expected a message object {role, content}")
    if last.get("role") != "assistant":
        raise AdaptError(
            f"{side}.{k}.role",
            f"the last message must be the assistant's answer, got {_shown(last.get('role'))}",
        )
    if "content" not in last:
        raise AdaptError(f"{side}.{k}.content", "missing required field")
    return messages[:-1], last["content"]


def preference_from_trl(row: dict[str, Any]) -> Adapted:
    ignored = unused_columns(row, ("prompt", "chosen", "rejected", *EXTRAS["preference"]))
    data: dict[str, Any] = {}
    answer_at: dict[str, str] = {}  # canonical answer field -> raw field holding it
    prefixes: dict[str, list[Any]] = {}
    prompt_from: str | None = None  # raw field the prompt messages come from (None: `prompt` itself)
    prompt_is_text = isinstance(row.get("prompt"), str)
    if "prompt" in row:
        prompt = row["prompt"]
        data["prompt"] = (
            [{"role": "user", "content": prompt}]
            if prompt_is_text
            else clean_messages(prompt, "prompt", ignored)
        )
    for side in ("chosen", "rejected"):
        if side not in row:
            continue
        value = row[side]
        if isinstance(value, list):
            prefixes[side], data[side] = _split_answer(value, side, ignored)
            answer_at[side] = f"{side}.{len(value) - 1}.content"
        else:
            data[side] = value
    if "prompt" in data:
        for side, prefix in prefixes.items():
            if prefix and isinstance(data["prompt"], list) and prefix != data["prompt"]:
                raise AdaptError(side, "the messages before the answer differ from `prompt`")
    elif prefixes:
        if len(prefixes) == 2 and prefixes["chosen"] != prefixes["rejected"]:
            raise AdaptError(
                "rejected",
                "the turns before the last answer differ from chosen's "
                "(with no `prompt` field, the prompt is the turns both share)",
            )
        prompt_from = "chosen" if "chosen" in prefixes else "rejected"
        data["prompt"] = prefixes[prompt_from]
    carry(row, EXTRAS["preference"], data)

    def locate(loc: Loc) -> str:
        if loc[0] == "prompt":
            if prompt_is_text:
                return "prompt"
            if prompt_from is not None:
                return dotted((prompt_from, *loc[1:]))
        if loc[0] in answer_at:
            return answer_at[loc[0]]
        return dotted(loc)

    return Adapted(data, locate, ignored)


def _score(row: dict[str, Any], name: str) -> float:
    if name not in row:
        raise AdaptError(name, "missing required field")
    value = row[name]
    try:
        number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an integer too large for a float
        number = math.nan
    if not math.isfinite(number):
        raise AdaptError(name, f"must be a finite number, got {_shown(value)}")
    return number


def preference_from_ultrafeedback(row: dict[str, Any]) -> Adapted:
    chosen_score, rejected_score = _score(row, "score_chosen"), _score(row, "score_rejected")
    if chosen_score < rejected_score:
        raise AdaptError(
            "score_chosen", f"score_chosen < score_rejected ({chosen_score:g} < {rejected_score:g})"
        )
    adapted = preference_from_trl(row)
    adapted.ignored -= {"score_chosen", "score_rejected"}
    if adapted.data.get("strength") is None:
        adapted.data["strength"] = strength_from_gap(chosen_score - rejected_score).value
    return adapted


# ---- prompts -----------------------------------------------------------------------------------------


def prompt_from_trl(row: dict[str, Any]) -> Adapted:
    source = "prompt" if "prompt" in row else "messages"
    ignored = unused_columns(row, (source, *EXTRAS["prompt"]))
    data: dict[str, Any] = {}
    value = row.get(source)
    if isinstance(value, str):
        data["messages"] = [{"role": "user", "content": value}]
    elif source in row:
        data["messages"] = clean_messages(value, source, ignored)
    carry(row, EXTRAS["prompt"], data)

    def locate(loc: Loc) -> str:
        if loc[0] == "messages":
            return source if isinstance(value, str) else dotted((source, *loc[1:]))
        return dotted(loc)

    return Adapted(data, locate, ignored)


ADAPTERS: dict[str, dict[str, Callable[[dict[str, Any]], Adapted]]] = {
    "conversation": {
        "canonical": canonical,
        "trl": conversation_from_trl,
        "sharegpt": conversation_from_sharegpt,
        "hh": conversation_from_hh,
        "alpaca": lambda row: conversation_from_alpaca(row, EXTRAS["conversation"]),
        "prompt_reference": lambda row: conversation_from_prompt_reference(row, EXTRAS["conversation"]),
    },
    "preference": {
        "canonical": canonical,
        "trl": preference_from_trl,
        "hh": preference_from_hh,
        "ultrafeedback": preference_from_ultrafeedback,
    },
    "prompt": {"canonical": canonical, "trl": prompt_from_trl,
               "alpaca": lambda row: prompt_from_alpaca(row, EXTRAS["prompt"])},
    "comparison": {"canonical": canonical},  # our own files only: what sampling writes and annotation reads
}


def detect_format(kind: str, row: dict[str, Any]) -> str:
    """Pick the format from one row's keys (and the types of a few): the first JSON object of a file."""
    keys = set(row)
    own_fields = set(KINDS[kind].model_fields)
    if kind in ("conversation", "prompt") and looks_like_alpaca(keys):
        return "alpaca"
    if kind == "conversation":
        if "conversations" in keys:
            return "sharegpt"
        if looks_like_prompt_with_reference(keys):
            return "prompt_reference"
        if "messages" in keys:
            # TRL rows look like ours; only columns we do not know tell them apart.
            return "canonical" if keys <= own_fields else "trl"
        if isinstance(row.get("text"), str) or isinstance(row.get("chosen"), str):
            return "hh"
        return "canonical"
    if kind == "preference":
        if "score_chosen" in keys or "score_rejected" in keys:
            return "ultrafeedback"
        if (
            isinstance(row.get("chosen"), list)
            or isinstance(row.get("rejected"), list)
            or isinstance(row.get("prompt"), str)
        ):
            return "trl"
        if "prompt" not in keys and isinstance(row.get("chosen"), str):
            return "hh"
        # Our shape (prompt messages + answer strings): a misspelt key must be reported, not ignored.
        return "canonical"
    if kind == "comparison" or ("messages" in keys and keys <= own_fields):
        return "canonical"
    return "trl" if ("prompt" in keys or "messages" in keys) else "canonical"
