"""The default decode loop: a left-padded batch on a KV cache (`RolloutCache`) that drops finished rows and refills the
freed slots with waiting prompts (continuous batching, in the coarse form a plain HF model allows).

Why drop and refill: `generate` keeps finished rows in the batch and waits for the longest answer of each
batch. Here a finished row leaves at once (in place: a live row from the end of the batch takes its slot,
so only the moved rows' cache is copied) and a new prompt takes its slot. On a CPU at batch 16-32 (and for
small models on a GPU) a step is bound by reading the weights and costs about the same with fewer rows, so
refill is what pays there; at batch 64 and up a CPU step is compute bound and every dropped row saves time.
Prompts of unlike lengths prefill in separate forwards (`prefill_groups`) instead of all padded to the
longest.

Layout of a batch: row r holds the prompt left-padded to the cache length, then its generated tokens.
`mask` [B, L] marks real cache columns, `next_pos` [B] is the position id of the token fed next (the number
of real tokens in the row's cache), `last` [B] is that token (the most recently chosen one, not yet cached).
"""

from __future__ import annotations

import weakref
from collections import deque

import torch

from chatalign.rollout.cache import RolloutCache
from chatalign.rollout.sampling import TokenRecorder

# See prefill_groups.
PREFILL_MIN_TOKENS = 2048
PREFILL_PAD_SLACK = 0.1


def supports_logits_to_keep(model) -> bool:
    check = getattr(model, "_supports_logits_to_keep", None)
    return bool(check()) if callable(check) else False


def cache_keyword(model) -> str:
    """The forward's keyword for the KV cache: `cache` where the model names it (transformers 5.2x deprecates
    `past_key_values`, to be removed in 5.40), else `past_key_values` (older versions, custom models). Looked up
    once per model: the decode loop asks on every step."""
    try:
        return _CACHE_KEYWORDS[model]
    except (KeyError, TypeError):  # TypeError: a callable that cannot be weakly referenced
        pass
    keyword = _read_cache_keyword(model)
    try:
        _CACHE_KEYWORDS[model] = keyword
    except TypeError:
        pass
    return keyword


_CACHE_KEYWORDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _read_cache_keyword(model) -> str:
    import inspect

    forward = getattr(model, "forward", model)
    base = getattr(model, "get_base_model", None)  # PEFT: its own forward takes **kwargs
    if callable(base):
        forward = base().forward
    try:
        return "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"
    except (TypeError, ValueError):
        return "past_key_values"


def left_pad(seqs: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack token lists right-aligned: (input_ids [n, P], mask [n, P] bool)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.bool)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = torch.tensor(s, dtype=torch.long)
        mask[i, width - len(s):] = True
    return ids.to(device), mask.to(device)


def left_pad_masks(masks: list[torch.Tensor]) -> torch.Tensor:
    """Stack [n_i, L_i] masks right-aligned into [sum n_i, max L_i], False in the added columns."""
    if len(masks) == 1:
        return masks[0]
    width = max(m.shape[1] for m in masks)
    return torch.cat([torch.cat([m.new_zeros((m.shape[0], width - m.shape[1])), m], dim=1) for m in masks])


def prefill_groups(lengths: list[int]) -> list[list[int]]:
    """Indices of prompts (longest first) grouped for separate prefill forwards.

    One forward left-pads every prompt to the longest; on the quickstart-like 112-172-token prompts of the
    rollout benchmark that is 30% more tokens than the prompts hold. A new group starts when the next prompt
    is more than PREFILL_PAD_SLACK shorter than the group's longest, once the group holds PREFILL_MIN_TOKENS
    (a forward that size still runs the matmuls at full rate on CPU and keeps a GPU busy).
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    groups: list[list[int]] = []
    for i in order:
        if groups:
            group = groups[-1]
            width = lengths[group[0]]
            if len(group) * width < PREFILL_MIN_TOKENS or width - lengths[i] <= PREFILL_PAD_SLACK * width:
                group.append(i)
                continue
        groups.append([i])
    return groups


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
                device, stats: dict | None = None) -> tuple[DecodeBatch, torch.Tensor]:
        """Run the distinct `prompts` once, then give each row (work item) its prompt's cache: K samples of
        one prompt share one prefill. Prompts of unlike lengths run in separate forwards (`prefill_groups`),
        so that a short prompt is not padded to the longest. Returns the batch (with `last` unset) and next-token
        logits [R, V]; adds the forwards and the (padded) tokens they ran to `stats` prefill_calls/_tokens."""
        kwargs = {"logits_to_keep": 1} if supports_logits_to_keep(model) else {}
        groups = prefill_groups([len(p) for p in prompts])
        caches, masks, logits = [], [], []
        for group in groups:
            ids, mask = left_pad([prompts[i] for i in group], pad_id, device)
            cache = RolloutCache()
            kwargs[cache_keyword(model)] = cache
            out = model(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask), use_cache=True,
                        **kwargs)
            caches.append(cache)
            masks.append(mask)
            logits.append(out.logits[:, -1, :])
            if stats is not None:
                stats["prefill_calls"] += 1
                stats["prefill_tokens"] += ids.numel()
        groups_order = [i for group in groups for i in group]
        cache = caches[0] if len(caches) == 1 else RolloutCache.stack(*caches)
        mask = left_pad_masks(masks)
        logits = logits[0] if len(logits) == 1 else torch.cat(logits)
        # Row r of the stacked prefill holds prompt groups_order[r]. Work rows are put in that order (rows may
        # sit in any order), so that one sample per prompt needs no copy; K samples copy their prompt's row.
        where = {p: r for r, p in enumerate(groups_order)}
        perm = sorted(range(len(rows)), key=lambda j: where[row_prompt[j]])
        rows = [rows[j] for j in perm]
        select_list = [where[row_prompt[j]] for j in perm]
        if select_list != list(range(len(prompts))):
            select = torch.tensor(select_list, dtype=torch.long, device=device)
            cache = cache.select_rows(select)
            logits, mask = logits.index_select(0, select), mask.index_select(0, select)
        next_pos = mask.long().sum(-1)
        return cls(cache, mask, next_pos, next_pos.new_zeros(len(rows)), list(rows)), logits

    def step(self, model) -> torch.Tensor:
        """Feed each row's `last` token; return next-token logits [B, V]."""
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self.rows), 1))], dim=1)
        out = model(input_ids=self.last.unsqueeze(1), attention_mask=self.mask,
                    position_ids=self.next_pos.unsqueeze(1), use_cache=True, **{cache_keyword(model): self.cache})
        self.next_pos = self.next_pos + 1
        return out.logits[:, -1, :]

    def keep(self, alive: list[bool]) -> DecodeBatch | None:
        """Drop the rows that are done, and the leading cache columns no remaining row uses.

        In place: live rows from the end of the batch move into the slots of finished ones (rows change
        order; `rows` says which work item each holds), and the batch is cut to the live rows."""
        if all(alive):
            return self
        n = sum(alive)
        if n == 0:
            return None
        holes = [i for i in range(n) if not alive[i]]
        movers = [i for i in range(n, len(alive)) if alive[i]]
        order = list(range(n))
        for h, m in zip(holes, movers, strict=True):
            order[h] = m
        dev = self.mask.device
        idx = torch.tensor(order, dtype=torch.long, device=dev)
        mask = self.mask.index_select(0, idx)
        start = int(mask.any(0).long().argmax())
        self.mask = mask[:, start:]
        self.next_pos, self.last = self.next_pos.index_select(0, idx), self.last.index_select(0, idx)
        self.rows = [self.rows[i] for i in order]
        self.cache.compact(torch.tensor(holes, dtype=torch.long, device=dev),
                           torch.tensor(movers, dtype=torch.long, device=dev), n, start)
        return self

    def merge(self, other: DecodeBatch) -> DecodeBatch:
        """Stack `other`'s rows under ours, left-padding the shorter cache with masked zeros."""
        return DecodeBatch(RolloutCache.stack(self.cache, other.cache), left_pad_masks([self.mask, other.mask]),
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
            new, logits = DecodeBatch.prefill(model, distinct_prompts, taken, [distinct[items[w][0]] for w in taken],
                                              pad_id, device, recorder.stats)
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
