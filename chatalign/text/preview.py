"""`chatalign data preview`: show which tokens of a chat file are trained, so a bad mask is seen before a run."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

GREEN = "\x1b[32m"
DIM = "\x1b[2m"
RESET = "\x1b[0m"
OPEN, CLOSE = "«", "»"  # marks trained text when colour is off


def segments(tokenizer, input_ids: Sequence[int], loss_mask: Sequence[int]) -> list[dict]:
    """Runs of equal mask as [{"text": decoded run, "loss": 0|1}], special tokens kept visible."""
    out: list[dict] = []
    start = 0
    for k in range(1, len(input_ids) + 1):
        if k == len(input_ids) or loss_mask[k] != loss_mask[start]:
            text = tokenizer.decode(list(input_ids[start:k]), skip_special_tokens=False,
                                    clean_up_tokenization_spaces=False)
            out.append({"text": text, "loss": int(loss_mask[start])})
            start = k
    return out


def render_terminal(segs: Sequence[dict], color: bool) -> str:
    """Trained text green and masked text dim; without colour, trained text is wrapped in «»."""
    parts = []
    for seg in segs:
        if color:
            parts.append(f"{GREEN if seg['loss'] else DIM}{seg['text']}{RESET}")
        else:
            parts.append(f"{OPEN}{seg['text']}{CLOSE}" if seg["loss"] else seg["text"])
    return "".join(parts)


def _use_color() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def preview_file(path: str, model_name: str, limit: int = 3, as_json: bool = False,
                 chat_template: str | None = None, *, color: bool | None = None,
                 train_on: str = "all_assistant", max_length: int | None = None) -> str:
    """The first `limit` conversations of `path` with their trained tokens marked (text, or JSON lines)."""
    from chatalign.data_schemas import load_records
    from chatalign.models import load_tokenizer
    from chatalign.text.masks import encode_chat
    from chatalign.text.templates import apply_named_template

    records = load_records(path, "conversation").records[:max(0, limit)]
    tokenizer = apply_named_template(load_tokenizer(model_name), chat_template)
    color = _use_color() if color is None else color
    blocks = []
    for n, conv in enumerate(records, 1):
        enc = encode_chat(tokenizer, conv.messages, max_length=max_length, train_on=train_on)
        segs = segments(tokenizer, enc.input_ids, enc.loss_mask)
        if as_json:
            blocks.append(json.dumps({"id": conv.id, "tokens": len(enc.input_ids), "trained_tokens": enc.n_trained,
                                      "truncated": enc.truncated, "segments": segs}, ensure_ascii=False))
            continue
        head = (f"--- example {n}" + (f" (id {conv.id})" if conv.id else "")
                + f": {len(enc.input_ids)} tokens, {enc.n_trained} trained"
                + (", truncated" if enc.truncated else "") + " ---")
        body = render_terminal(segs, color)
        if enc.n_trained == 0:
            body += "\n(no trained token: a run would report and skip this row)"
        blocks.append(f"{head}\n{body}")
    if as_json:
        return "\n".join(blocks)
    legend = "trained text in green, masked text dim" if color else f"trained text between {OPEN} {CLOSE}"
    return "\n\n".join(blocks + [f"({len(records)} example(s) shown; {legend})"])
