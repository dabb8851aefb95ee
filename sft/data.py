"""Conversations -> masked token rows -> packed rows, with the statistics a dry run prints."""

from __future__ import annotations

from dataclasses import dataclass

from chatalign.errors import DataError


@dataclass
class EncodedSet:
    examples: list[tuple[list[int], list[int]]]  # (input_ids, loss_mask) of usable rows
    stats: dict


def load_conversations(path: str, fmt: str = "auto", on_error: str = "raise", quarantine: str | None = None,
                       max_rows: int | None = None, tags: list[str] | None = None):
    from chatalign.data_schemas import load_records

    result = load_records(path, "conversation", fmt=fmt, on_error=on_error, quarantine=quarantine)
    records = result.records
    if tags:
        wanted = set(tags)
        records = [r for r in records if wanted.intersection(r.tags)]
    records = records[:max_rows] if max_rows else records
    if not records:
        raise DataError(f"{path}: no usable conversations" + (f" tagged with any of {tags}" if tags else ""))
    return records, result.skipped


def encode_conversations(tokenizer, conversations, seq_len: int, train_on: str, truncation: str) -> EncodedSet:
    from chatalign.text.masks import encode_chat

    examples, lengths = [], []
    truncated = empty = trained = 0
    for conv in conversations:
        messages = [{"role": m.role, "content": m.content} for m in conv.messages]
        enc = encode_chat(tokenizer, messages, max_length=seq_len, train_on=train_on, truncation=truncation)
        truncated += int(enc.truncated)
        if enc.n_trained == 0:
            empty += 1  # reported, never trained on: a row without a target would only add noise
            continue
        examples.append((enc.input_ids, enc.loss_mask))
        lengths.append(len(enc.input_ids))
        trained += enc.n_trained
    if not examples:
        raise DataError(f"no conversation has a trained token within seq_len={seq_len} "
                        f"({empty} rows without an assistant token after truncation)")
    total = sum(lengths)
    lengths_sorted = sorted(lengths)
    stats = {
        "rows": len(conversations), "usable_rows": len(examples), "truncated_rows": truncated,
        "rows_without_trained_tokens": empty, "tokens": total, "trained_tokens": trained,
        "trained_fraction": round(trained / total, 4), "median_length": lengths_sorted[len(lengths) // 2],
        "max_length": lengths_sorted[-1],
    }
    return EncodedSet(examples, stats)
