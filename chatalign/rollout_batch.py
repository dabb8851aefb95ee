"""The default decode loop: a left-padded batch on a KV cache (`RolloutCache`) that drops finished rows and refills the
freed slots with waiting prompts (continuous batching, in the coarse form a plain HF model allows).

Why refill: on a CPU (and for small models on a GPU) one decode step costs about the same whether it carries
4 rows or 32, because it is bound by reading the weights. `generate` keeps finished rows in the batch and
waits for the longest answer of each batch; here a finished row leaves at once and a new prompt takes its
slot, so every step carries as many live rows as possible.

Layout of a batch: row r holds the prompt left-padded to the cache length, then its generated tokens.
`mask` [B, L] marks real cache columns, `next_pos` [B] is the position id of the token fed next (the number
of real tokens in the row's cache), `last` [B] is that token (the most recently chosen one, not yet cached).
"""

from __future__ import annotations

from collections import deque

import torch

from chatalign.rollout_cache import RolloutCache
from chatalign.rollout_sampling import TokenRecorder


def supports_logits_to_keep(model) -> bool:
    check = getattr(model, "_supports_logits_to_keep", None)
    return bool(check()) if callable(check) else False


def left_pad(seqs: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack token lists right-aligned: (input_ids [n, P], mask [n, P] bool)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.bool)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = torch.tensor(s, dtype=torch.long)
        mask[i, width - len(s):] = True
    return ids.to(device), mask.to(device)


def positions_from_mask(mask: torch.Tensor) -> torch.Tensor:
    # Left padding: a row's first real token gets position 0. Pad columns get 0 too (they are masked out).
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


class DecodeBatch:
    def __init__(self, cache, mask: torch.Tensor, next_pos: torch.Tensor, last: torch.Tensor, rows: list[int]):
        self.cache, self.mask, self.next_pos, self.last, self.rows = cache, mask, next_pos, last, rows

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def prefill(cls, model, prompts: list[list[int]], rows: list[int], row_prompt: list[int], pad_id: int,
                device) -> tuple[DecodeBatch, torch.Tensor]:
        """Run the distinct `prompts` once, then give each row (work item) its prompt's cache: K samples of
        one prompt share one prefill. Returns the batch (with `last` unset) and next-token logits [R, V]."""
        ids, mask = left_pad(prompts, pad_id, device)
        cache = RolloutCache()
        kwargs = {"logits_to_keep": 1} if supports_logits_to_keep(model) else {}
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask),
                    past_key_values=cache, use_cache=True, **kwargs)
        logits = out.logits[:, -1, :]
        select = torch.tensor(row_prompt, dtype=torch.long, device=device)
        if row_prompt != list(range(len(prompts))):
            cache = cache.select_rows(select)
            logits, mask = logits.index_select(0, select), mask.index_select(0, select)
        next_pos = mask.long().sum(-1)
        return cls(cache, mask, next_pos, next_pos.new_zeros(len(rows)), list(rows)), logits

    def step(self, model) -> torch.Tensor:
        """Feed each row's `last` token; return next-token logits [B, V]."""
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self.rows), 1))], dim=1)
        out = model(input_ids=self.last.unsqueeze(1), attention_mask=self.mask,
                    position_ids=self.next_pos.unsqueeze(1), past_key_values=self.cache, use_cache=True)
        self.next_pos = self.next_pos + 1
        return out.logits[:, -1, :]

    def keep(self, alive: list[bool]) -> DecodeBatch | None:
        """Drop the rows that are done, and the leading cache columns no remaining row uses."""
        if all(alive):
            return self
        if not any(alive):
            return None
        idx = torch.tensor([i for i, a in enumerate(alive) if a], dtype=torch.long, device=self.mask.device)
        mask = self.mask.index_select(0, idx)
        start = int(mask.any(0).long().argmax())
        self.cache = self.cache.select_rows(idx, start)
        self.mask = mask[:, start:]
        self.next_pos, self.last = self.next_pos.index_select(0, idx), self.last.index_select(0, idx)
        self.rows = [r for r, a in zip(self.rows, alive) if a]
        return self

    def merge(self, other: DecodeBatch) -> DecodeBatch:
        """Stack `other`'s rows under ours, left-padding the shorter cache with masked zeros."""
        width = max(self.mask.shape[1], other.mask.shape[1])
        pad_mask = lambda m: torch.cat([m.new_zeros((m.shape[0], width - m.shape[1])), m], dim=1)  # noqa: E731
        return DecodeBatch(RolloutCache.stack(self.cache, other.cache),
                           torch.cat([pad_mask(self.mask), pad_mask(other.mask)]),
                           torch.cat([self.next_pos, other.next_pos]), torch.cat([self.last, other.last]),
                           self.rows + other.rows)


def decode_dynamic(model, prompts: list[list[int]], items: list[tuple[int, int]], order: list[int],
                   recorder: TokenRecorder, *, batch_size: int, pad_id: int, device) -> None:
    """Decode work `items` [(prompt_index, sample_index)] in `order`, at most `batch_size` rows at a time."""
    queue = deque(order)
    # Refilling costs a prefill forward (about one decode step's weight traffic even for one prompt), so wait
    # until a quarter of the slots are free, unless the queue's remainder fits now.
    refill_at = max(1, batch_size // 4)
    batch: DecodeBatch | None = None
    while queue or batch is not None:
        free = batch_size - (len(batch) if batch is not None else 0)
        if queue and free > 0 and (batch is None or free >= min(refill_at, len(queue))):
            taken = [queue.popleft() for _ in range(min(free, len(queue)))]
            distinct: dict[int, int] = {}
            for w in taken:
                distinct.setdefault(items[w][0], len(distinct))
            distinct_prompts = [prompts[p] for p in distinct]
            new, logits = DecodeBatch.prefill(model, distinct_prompts, taken,
                                              [distinct[items[w][0]] for w in taken], pad_id, device)
            recorder.stats["prefill_calls"] += 1
            recorder.stats["prefill_tokens"] += len(distinct_prompts) * max(map(len, distinct_prompts))
            new.last, alive = recorder.advance(new.rows, logits)
            new = new.keep(alive)
            if new is not None:
                batch = new if batch is None else batch.merge(new)
            continue
        if batch is None:
            continue
        logits = batch.step(model)
        recorder.stats["decode_steps"] += 1
        recorder.stats["decode_row_steps"] += len(batch)
        batch.last, alive = recorder.advance(batch.rows, logits)
        batch = batch.keep(alive)
