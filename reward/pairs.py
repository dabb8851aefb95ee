"""Preference pairs -> token sequences read by the reward head, and the packed rows of a run.

Each side of a pair is the whole conversation (prompt plus one answer) rendered with the tokenizer's own
chat template, `apply_chat_template(conversation, tokenize=False)`, and tokenized without adding special
tokens, exactly as `apply_chat_template(conversation)` tokenizes it. The head reads the hidden state of the
last token of that text: for ChatML the newline after the answer's `<|im_end|>`. That is where the standard
API reads a saved RM (`AutoModelForSequenceClassification` fed `apply_chat_template(...)` reads the
rightmost non-pad token), so the score there is the score trained, whichever tool computes it.

A side longer than `max_seq_len` first loses its oldest dialogue rounds (as SFT's "drop_oldest_turns");
if the last round alone is still too long the pair is left out and counted (`too_long`), never cut:
the head would then read a position the conversation does not end on.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from chatalign.errors import DataError


@dataclass
class PairExample:
    chosen_ids: list[int]  # the chosen side's tokens; a reward model reads the last one
    rejected_ids: list[int]
    margin: float
    strength: str  # label, or "none" where the pair has none
    source: str
    safety_bin: str

    @property
    def n_tokens(self) -> int:
        return len(self.chosen_ids) + len(self.rejected_ids)


@dataclass
class PairRow:
    """Whole pairs packed into one padding-free row (both sides of a pair always in the same row)."""

    pairs: list[PairExample] = field(default_factory=list)

    @property
    def n_tokens(self) -> int:
        return sum(p.n_tokens for p in self.pairs)


def render_ids(tokenizer, conversations: Sequence[Sequence[dict]]) -> list[list[int]]:
    """Token ids of each whole conversation as `apply_chat_template(conversation)` gives them."""
    from chatalign.text.masks import render_chat

    if not conversations:
        return []
    texts = [render_chat(tokenizer, conv) for conv in conversations]
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def encode_answers(tokenizer, prompts: Sequence[Sequence[dict]], answers: Sequence[str],
                   max_seq_len: int | None = None) -> list[list[int] | None]:
    """Token ids of each rendered prompt + answer, read at their last token; None where even the last
    round does not fit max_seq_len."""
    from chatalign.text.masks import drop_oldest_round

    convs = [list(p) + [{"role": "assistant", "content": a}] for p, a in zip(prompts, answers, strict=True)]
    out: list[list[int] | None] = list(render_ids(tokenizer, convs))
    for i, conv in enumerate(convs):
        while max_seq_len is not None and out[i] is not None and len(out[i]) > max_seq_len:
            conv = drop_oldest_round(conv)
            out[i] = None if conv is None else render_ids(tokenizer, [conv])[0]
    return out


def message_dicts(messages) -> list[dict]:
    return [{"role": getattr(m.role, "value", m.role), "content": m.content} for m in messages]


def encode_pairs(tokenizer, prefs: Sequence, sources: Sequence[str], margins: Sequence[float],
                 max_seq_len: int | None) -> tuple[list[PairExample], dict]:
    """PairExamples of the pairs that fit, and statistics (pairs, too_long, tokens, lengths)."""
    from chatalign.reward.margins import strength_name
    from chatalign.reward.safety_bins import pair_bin

    prompts = [message_dicts(p.prompt) for p in prefs]
    ids = encode_answers(tokenizer, prompts + prompts, [p.chosen for p in prefs] + [p.rejected for p in prefs],
                         max_seq_len)
    n = len(prefs)
    examples, too_long = [], 0
    for i, pref in enumerate(prefs):
        chosen, rejected = ids[i], ids[n + i]
        if chosen is None or rejected is None:
            too_long += 1
            continue
        examples.append(PairExample(chosen, rejected, float(margins[i]), strength_name(pref.strength) or "none",
                                    sources[i], pair_bin(pref)))
    lengths = sorted(len(s) for e in examples for s in (e.chosen_ids, e.rejected_ids))
    stats = {"pairs": len(examples), "too_long": too_long, "tokens": sum(lengths),
             "median_length": lengths[len(lengths) // 2] if lengths else 0,
             "max_length": lengths[-1] if lengths else 0,
             "strengths": dict(sorted(Counter(e.strength for e in examples).items())),
             "safety_bins": dict(sorted(Counter(e.safety_bin for e in examples).items()))}
    return examples, stats


def plan_rows(examples: Sequence[PairExample], global_batch_pairs: int, row_tokens: int, epochs: int,
              seed: int) -> tuple[list[PairRow], list[list[int]]]:
    """Rows and the per-step plan of a whole run: a seeded shuffle of the pairs per epoch, cut into steps
    of `global_batch_pairs` pairs (the last one may be smaller), each step's pairs packed into rows of at
    most `row_tokens` tokens. Fixed up front, so that a resumed run replays the same batches."""
    from chatalign.text.packing import pack_bins

    if not examples:
        raise DataError("no preference pairs to train on")
    rows: list[PairRow] = []
    plan: list[list[int]] = []
    for epoch in range(epochs):
        order = list(range(len(examples)))
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        for start in range(0, len(order), global_batch_pairs):
            chunk = order[start:start + global_batch_pairs]
            bins = pack_bins([examples[i].n_tokens for i in chunk], row_tokens)
            step = []
            for b in bins:
                step.append(len(rows))
                rows.append(PairRow([examples[chunk[k]] for k in b]))
            plan.append(step)
    return rows, plan


def collate_pairs(rows: Sequence[PairRow]) -> dict:
    """Flatten rows into one padding-free batch [1, T]: per pair the chosen then the rejected sequence,
    position ids restarting at each; `read_index` holds the flat positions of their last tokens."""
    import torch

    ids: list[int] = []
    pos: list[int] = []
    read: list[int] = []
    margin: list[float] = []
    for row in rows:
        for pair in row.pairs:
            for seq in (pair.chosen_ids, pair.rejected_ids):
                ids.extend(seq)
                pos.extend(range(len(seq)))
                read.append(len(ids) - 1)
            margin.append(pair.margin)
    return {"input_ids": torch.tensor([ids], dtype=torch.long),
            "position_ids": torch.tensor([pos], dtype=torch.long),
            "read_index": torch.tensor(read, dtype=torch.long),
            "margin": torch.tensor(margin, dtype=torch.float32)}
