"""Padding-free packing: many examples in one row, position ids restarting per example.

transformers builds per-document attention from `position_ids` resets only when the forward gets no
attention mask and no KV cache, so packed rows must be run with `use_cache=False` and no mask.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

IGNORE = -100


@dataclass
class PackedRow:
    """One training row: concatenated examples, with labels already aligned to input positions."""

    input_ids: list[int]
    position_ids: list[int]
    labels: list[int]  # labels[t] is the target for logits at t (shifted), IGNORE where no loss
    n_trained: int
    example_ids: list[int]


def pack_bins(lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Best-fit decreasing bin packing of example indices into bins of at most `max_tokens` tokens."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    free: list[int] = []
    for i in order:
        n = lengths[i]
        if n > max_tokens:
            raise ValueError(f"example {i} has {n} tokens, more than the row budget {max_tokens}")
        best, best_left = -1, max_tokens + 1
        for b, left in enumerate(free):
            if n <= left and left - n < best_left:
                best, best_left = b, left - n
                if best_left == 0:
                    break
        if best < 0:
            bins.append([i])
            free.append(max_tokens - n)
        else:
            bins[best].append(i)
            free[best] -= n
    return bins


def build_row(examples: Sequence[tuple[Sequence[int], Sequence[int]]], example_ids: Sequence[int]) -> PackedRow:
    """Concatenate (input_ids, loss_mask) pairs; the label of position t is token t+1 when it is trained."""
    ids: list[int] = []
    pos: list[int] = []
    labels: list[int] = []
    n_trained = 0
    for input_ids, mask in examples:
        n = len(input_ids)
        ids.extend(input_ids)
        pos.extend(range(n))
        for t in range(n):
            # the last token of an example has no next token inside the same example
            if t + 1 < n and mask[t + 1]:
                labels.append(input_ids[t + 1])
                n_trained += 1
            else:
                labels.append(IGNORE)
    return PackedRow(ids, pos, labels, n_trained, list(example_ids))


def pack_examples(examples: Sequence[tuple[Sequence[int], Sequence[int]]], max_tokens: int) -> list[PackedRow]:
    bins = pack_bins([len(e[0]) for e in examples], max_tokens)
    return [build_row([examples[i] for i in b], b) for b in bins]


def step_plan(n_rows: int, rows_per_step: int, epochs: int, seed: int, drop_last: bool = False) -> list[list[int]]:
    """The row order of a whole run, grouped by optimizer step: a fresh seeded shuffle per epoch.

    Fixed up front so that a resumed run replays exactly the same data order.
    """
    steps: list[list[int]] = []
    for epoch in range(epochs):
        order = list(range(n_rows))
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        for start in range(0, n_rows, rows_per_step):
            chunk = order[start:start + rows_per_step]
            if drop_last and len(chunk) < rows_per_step:
                continue
            steps.append(chunk)
    return steps


def collate_rows(rows: Sequence[PackedRow]):
    """Flatten several packed rows into one padding-free batch of shape [1, total_tokens]."""
    import torch

    ids = [t for r in rows for t in r.input_ids]
    pos = [t for r in rows for t in r.position_ids]
    labels = [t for r in rows for t in r.labels]
    return {
        "input_ids": torch.tensor([ids], dtype=torch.long),
        "position_ids": torch.tensor([pos], dtype=torch.long),
        "labels": torch.tensor([labels], dtype=torch.long),
    }
