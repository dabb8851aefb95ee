"""Chat conversations -> input_ids + per-token loss masks, for chat templates without `{% generation %}` markers.

How the mask is found. The conversation is rendered to text with the tokenizer's chat template. For an assistant
message i, its answer span in characters is

    [len(render(messages[:i], add_generation_prompt=True)), len(render(messages[:i+1])))

with trailing whitespace cut off, so the span ends on the end-of-turn token (`<|im_end|>`, `</s>`) and the
newline a template writes after it stays untrained. Both renders must be prefixes of the full text; a template
that renders earlier turns differently once later turns exist (or that puts something between turns that
depends on what follows) breaks this and is refused with a ConfigError, never guessed around.

The full text is then tokenized once, with offsets and without adding special tokens (the template writes BOS
where it wants it; `apply_chat_template(tokenize=True)` does the same). Prefixes are rendered as strings only,
so the cost per row is a few cheap renders plus one tokenization, not one tokenization per turn.

Boundary rule: a token is trained when its character range shares at least one character with an answer
span. A token that straddles a boundary (sentencepiece's "▁answer", whose space belongs to the template, or
a BPE token " Hello" after a generation prompt ending in "Assistant: ") is one the model has to emit to produce
the answer, so it is trained. Zero-width tokens are never trained.

The mask comes from character positions only, never from token ids: SmolLM2's end-of-turn token `<|im_end|>`
is also its pad token, and a mask built from "not pad" would silently drop the end-of-turn target.

Truncation policy (max_length in tokens):
  - a row longer than max_length is cut on the right to max_length (truncated=True); the part of an answer
    that remains is trained.
  - "truncate_right": that is all.
  - "drop_oldest_turns": if the cut row has no trained token left, the oldest round (first non-system
    message up to the next user message after an assistant reply) is removed, system messages kept, and
    the row encoded again; repeated one round at a time while at least one round would remain.
  - a row that still has no trained token comes back with n_trained == 0 (also a row without any assistant
    message). Callers count and report such rows and must not train on them.
An assistant message at index 0 answers no prompt: it stays in the text as context and is not trained.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from chatalign.errors import ConfigError, DataError

TRAIN_ON = ("all_assistant", "last_assistant")
TRUNCATION = ("drop_oldest_turns", "truncate_right")


@dataclass
class EncodedChat:
    input_ids: list[int]
    loss_mask: list[int]  # 1 on assistant answer tokens (end-of-turn included), 0 elsewhere
    n_trained: int
    truncated: bool
    dropped_turns: int = 0  # rounds removed by "drop_oldest_turns"


def as_message_dicts(messages: Iterable[Any]) -> list[dict]:
    """Plain {"role", "content"} dicts from dicts or objects with .role/.content (pydantic messages)."""
    out = []
    for m in messages:
        if isinstance(m, dict):
            out.append(m)
        else:
            out.append({"role": getattr(m.role, "value", m.role), "content": m.content})  # enum roles too
    return out


def render_chat(tokenizer, messages: Sequence[dict], add_generation_prompt: bool = False) -> str:
    """The template's text for `messages`; a template that rejects the conversation raises DataError."""
    from jinja2 import TemplateError

    if not messages:
        raise DataError("empty conversation: nothing to render")
    try:
        return tokenizer.apply_chat_template(list(messages), tokenize=False,
                                             add_generation_prompt=add_generation_prompt)
    except TemplateError as exc:
        raise DataError(f"chat template rejected the conversation: {exc}") from None
    except ValueError as exc:
        if "chat_template" in str(exc) or "chat template" in str(exc):
            raise ConfigError(f"{exc} (set `chat_template` in the recipe: chatml, llama2 or zephyr)") from None
        raise


def _prefix_problem(full: str, prefix: str, what: str, turn: int) -> ConfigError:
    at = next((k for k, (a, b) in enumerate(zip(full, prefix, strict=False)) if a != b), min(len(full), len(prefix)))
    return ConfigError(
        f"chat template problem: the text rendered for {what} of message {turn} is not a prefix of the whole "
        f"conversation (they differ at character {at}: {prefix[at:at + 40]!r} vs {full[at:at + 40]!r}). "
        "Loss masks cannot be derived from such a template without {% generation %} markers; set "
        "`chat_template` to chatml, llama2 or zephyr, or fix the template.")


def _answer_spans(tokenizer, messages: list[dict], train_on: str) -> tuple[str, list[tuple[int, int]]]:
    """Rendered text and the character spans of the assistant answers to train on."""
    full = render_chat(tokenizer, messages)
    targets = [i for i, m in enumerate(messages) if m["role"] == "assistant" and i > 0]
    if train_on == "last_assistant":
        targets = targets[-1:]
    spans = []
    for i in targets:
        before = render_chat(tokenizer, messages[:i], add_generation_prompt=True)
        through = full if i == len(messages) - 1 else render_chat(tokenizer, messages[:i + 1])
        if not full.startswith(before):
            raise _prefix_problem(full, before, "the prompt before", i)
        if not full.startswith(through) or len(through) < len(before):
            raise _prefix_problem(full, through, "the conversation through", i)
        start = len(before)
        end = max(start, len(through[start:].rstrip()) + start)
        spans.append((start, end))
    return full, spans


def _tokenize_with_offsets(tokenizer, texts: list[str]) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"loss masks need a fast (Rust) tokenizer with offsets; {type(tokenizer).__name__} "
                          "of this model is not one")
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    return enc["input_ids"], enc["offset_mapping"]


def mask_from_offsets(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[int]:
    """1 where a token's [start, end) shares a character with any span, else 0 (spans sorted, disjoint)."""
    mask = [0] * len(offsets)
    if not spans:
        return mask
    k = 0
    for t, (s, e) in enumerate(offsets):
        if e <= s:
            continue  # zero-width: nothing of the answer in it
        while k < len(spans) and spans[k][1] <= s:
            k += 1  # offsets only move right, so spans left behind stay behind
        if k == len(spans):
            break
        # span k ends after this token starts; if the token misses it, it ends before span k begins and
        # so before every later span too: checking span k suffices
        if spans[k][0] < e and s < spans[k][1]:
            mask[t] = 1
    return mask


def _fit(ids: list[int], mask: list[int], max_length: int | None, dropped: int) -> EncodedChat:
    truncated = max_length is not None and len(ids) > max_length
    if truncated:
        ids, mask = ids[:max_length], mask[:max_length]
    return EncodedChat(list(ids), mask, sum(mask), truncated, dropped)


def drop_oldest_round(messages: list[dict]) -> list[dict] | None:
    """Messages without the oldest user/assistant round (system messages kept); None if only one round is left."""
    first = next((k for k, m in enumerate(messages) if m["role"] != "system"), None)
    if first is None:
        return None
    reply = next((k for k in range(first, len(messages)) if messages[k]["role"] == "assistant"), None)
    if reply is None:
        return None
    next_user = next((k for k in range(reply + 1, len(messages)) if messages[k]["role"] == "user"), None)
    if next_user is None:
        return None
    return messages[:first] + messages[next_user:]


def _check_options(max_length: int | None, train_on: str, truncation: str) -> None:
    if train_on not in TRAIN_ON:
        raise ConfigError(f"train_on={train_on!r}: expected one of {', '.join(TRAIN_ON)}")
    if truncation not in TRUNCATION:
        raise ConfigError(f"truncation={truncation!r}: expected one of {', '.join(TRUNCATION)}")
    if max_length is not None and max_length < 1:
        raise ConfigError(f"max_length={max_length}: must be a positive number of tokens")


def _encode_with_drops(tokenizer, messages: list[dict], first: EncodedChat, max_length: int | None,
                       train_on: str) -> EncodedChat:
    """The "drop_oldest_turns" retry: remove one oldest round at a time until an answer token fits."""
    result, dropped = first, 0
    while result.n_trained == 0 and result.truncated:
        shorter = drop_oldest_round(messages)
        if shorter is None:
            break
        messages, dropped = shorter, dropped + 1
        text, spans = _answer_spans(tokenizer, messages, train_on)
        ids, offsets = _tokenize_with_offsets(tokenizer, [text])
        result = _fit(ids[0], mask_from_offsets(offsets[0], spans), max_length, dropped)
    return result


def encode_chat(tokenizer, messages: Sequence[Any], *, max_length: int | None = None,
                train_on: str = "all_assistant", truncation: str = "truncate_right") -> EncodedChat:
    """Token ids and loss mask of one conversation (see the module docstring for the rules)."""
    return encode_chat_batch(tokenizer, [messages], max_length=max_length, train_on=train_on,
                             truncation=truncation)[0][0]


def encode_chat_batch(tokenizer, conversations: Iterable[Any], *, max_length: int | None = None,
                      train_on: str = "all_assistant", truncation: str = "truncate_right",
                      ) -> tuple[list[EncodedChat], dict]:
    """encode_chat over many conversations (message lists or objects with .messages), tokenized in one call.

    Returns the encoded rows in order and stats: rows, tokens, trained_tokens, truncated, empty (rows with
    n_trained == 0, which the caller must report and skip), dropped_turns.
    """
    _check_options(max_length, train_on, truncation)
    convs = [as_message_dicts(getattr(c, "messages", c)) for c in conversations]
    rendered = [_answer_spans(tokenizer, msgs, train_on) for msgs in convs]
    all_ids, all_offsets = _tokenize_with_offsets(tokenizer, [text for text, _ in rendered]) if convs else ([], [])
    rows = []
    for msgs, (_, spans), ids, offsets in zip(convs, rendered, all_ids, all_offsets, strict=True):
        row = _fit(ids, mask_from_offsets(offsets, spans), max_length, 0)
        if truncation == "drop_oldest_turns" and row.n_trained == 0 and row.truncated:
            row = _encode_with_drops(tokenizer, msgs, row, max_length, train_on)
        rows.append(row)
    stats = {
        "rows": len(rows),
        "tokens": sum(len(r.input_ids) for r in rows),
        "trained_tokens": sum(r.n_trained for r in rows),
        "truncated": sum(r.truncated for r in rows),
        "empty": sum(r.n_trained == 0 for r in rows),
        "dropped_turns": sum(r.dropped_turns for r in rows),
    }
    return rows, stats


def encode_prompt(tokenizer, messages: Sequence[Any]) -> list[int]:
    """Token ids of a prompt for generation: the template's text with its generation prompt, BOS as it writes it."""
    text = render_chat(tokenizer, as_message_dicts(messages), add_generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])
