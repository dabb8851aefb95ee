"""Multi-turn decoding that keeps each dialogue's keys/values from one turn to the next.

Why: GAtt answers dialogues turn by turn, and the prompt of turn t+1 is the prompt of turn t plus one answer
and one user message. Re-encoding the whole history at every turn costs sum_t |history_t| prompt tokens,
quadratic in the number of turns: on the quickstart CPU (135M model, one thread, ~300 prefill tokens per
CPU-second) a 20-turn dialogue cost ~9,500 prefill tokens, ~30 CPU-s, before one answer token was drawn.
Here the keys/values of every answer of the last call are kept (its prompt and the answer's tokens, taken
from the decode cache as the answer finishes); a new prompt reuses the longest token prefix it shares with a
kept one and runs only the tokens after it, so a dialogue's prefill is linear in its length, and an answer is
never encoded twice. With k candidates per prompt all k are kept: the one the caller picks is the one the
next prompt continues. The model sees the same tokens at the same positions under the same mask as with a full re-encode
(an old answer re-tokenized differently, or a windowed prompt, simply shares a shorter prefix).

Memory: a kept answer holds layers x 2 x kv_heads x head_dim values per token (46 KB per token for the 135M
model in float32; 0.5 MB for a 7B model in bf16), for every answer of the last call: turn it off
(`reuse_prefix: false`) where that does not fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from chatalign.gatt.prompt_window import fit_prompts, zeroed_counters
from chatalign.gatt.turns import Candidate


@dataclass
class KeptPrompt:
    ids: list[int]
    kv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values [kv_heads, len(ids), head_dim]


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    diff = torch.tensor(a[:n]) != torch.tensor(b[:n])
    return int(diff.long().argmax())


class PrefixStore:
    """The prompts of the last call, with their keys/values; `best` finds what a new prompt can reuse."""

    def __init__(self) -> None:
        self.kept: list[KeptPrompt] = []

    def best(self, ids: list[int]) -> tuple[KeptPrompt | None, int]:
        """The kept prompt sharing the longest prefix with `ids`, and how many tokens of it to reuse: at most
        len(ids) - 1, since the last prompt token must run to give the logits of the first answer token."""
        found, length = None, 0
        for kept in self.kept:
            n = min(common_prefix(kept.ids, ids), len(ids) - 1)
            if n > length:
                found, length = kept, n
        return found, length

    def replace(self, kept: list[KeptPrompt]) -> None:
        self.kept = kept


def row_kv(cache, mask: torch.Tensor, row: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One batch row's keys/values, its real (unmasked) columns only, in order: [kv_heads, tokens, head_dim]."""
    cols = mask[row].nonzero().squeeze(-1)
    return [(layer.keys[row].index_select(1, cols), layer.values[row].index_select(1, cols)) for layer in cache.layers]


def prefill_on_prefixes(model, prompts: list[list[int]], reuse: list[tuple[KeptPrompt | None, int]], pad_id: int,
                        device):
    """Run each prompt's tokens after its reused prefix, on a cache holding that prefix.

    Layout of row i (R = longest reused prefix, C = longest new part): [zeros | reused_i | pads | new_i], with
    the mask off on zeros and pads and position ids counting real tokens only, so the row reads exactly as its
    prompt alone. Returns (cache, mask [n, R+C], next_pos [n], last-token logits [n, V]).
    """
    from chatalign.rollout.batch import cache_keyword, supports_logits_to_keep
    from chatalign.rollout.cache import RolloutCache

    n = len(prompts)
    used = [r for _, r in reuse]
    width_past = max(used)
    new_parts = [p[r:] for p, r in zip(prompts, used, strict=True)]
    width_new = max(len(x) for x in new_parts)
    cache = RolloutCache()
    mask = torch.zeros((n, width_past + width_new), dtype=torch.bool)
    ids = torch.full((n, width_new), pad_id, dtype=torch.long)
    pos = torch.zeros((n, width_new), dtype=torch.long)
    for i, (part, r) in enumerate(zip(new_parts, used, strict=True)):
        mask[i, width_past - r:width_past] = True
        mask[i, width_past + width_new - len(part):] = True
        ids[i, width_new - len(part):] = torch.tensor(part, dtype=torch.long)
        pos[i, width_new - len(part):] = torch.arange(r, r + len(part))
    if width_past:
        first = next(kept for kept, _ in reuse if kept is not None)
        for layer, (k0, v0) in enumerate(first.kv):
            keys = k0.new_zeros((n, k0.shape[0], width_past, k0.shape[2]))
            values = v0.new_zeros((n, v0.shape[0], width_past, v0.shape[2]))
            for i, (kept, r) in enumerate(reuse):
                if r:
                    keys[i, :, width_past - r:] = kept.kv[layer][0][:, :r]
                    values[i, :, width_past - r:] = kept.kv[layer][1][:, :r]
            cache.update(keys, values, layer)
    mask = mask.to(device)
    kwargs = {"logits_to_keep": 1} if supports_logits_to_keep(model) else {}
    kwargs[cache_keyword(model)] = cache
    out = model(input_ids=ids.to(device), attention_mask=mask, position_ids=pos.to(device), use_cache=True,
                **kwargs)
    next_pos = torch.tensor([len(p) for p in prompts], dtype=torch.long, device=device)
    return cache, mask, next_pos, out.logits[:, -1, :]


def prefill_batch(model, prompts: list[list[int]], reuse, k: int, pad_id: int, device):
    """Prefill `prompts` on their reused prefixes and lay them out as a decode batch of k rows per prompt
    (prompt-major). Returns the DecodeBatch (rows and `last` still to set) and the logits [n*k, V]."""
    from chatalign.rollout.batch import DecodeBatch

    cache, mask, next_pos, logits = prefill_on_prefixes(model, prompts, reuse, pad_id, device)
    if k > 1:
        select = torch.arange(len(prompts), device=device).repeat_interleave(k)
        cache, mask = cache.select_rows(select), mask.index_select(0, select)
        next_pos, logits = next_pos.index_select(0, select), logits.index_select(0, select)
    return DecodeBatch(cache, mask, next_pos, next_pos.new_zeros(len(next_pos)), []), logits


def keep_finished(batch, alive: list[bool], tokens_of, kept: list[KeptPrompt]):
    """Before the finished rows leave the batch, keep their keys/values for the next turn: the prompt and the
    answer but its last token (chosen, never fed). `tokens_of(item)` gives those token ids."""
    for r, (item, a) in enumerate(zip(batch.rows, alive, strict=True)):
        if not a:
            kept.append(KeptPrompt(tokens_of(item), row_kv(batch.cache, batch.mask, r)))
    return batch.keep(alive)


class PrefixCachedAnswerer:
    """An AnswerFn that reuses each dialogue's previous prompt (see the module docstring); call i samples
    with seed + i, so a run is reproducible. Prompts run in groups of batch_size // k (k answers each).
    `store` holds what the next call can reuse."""

    COUNTERS = ("prompt_tokens", "prefill_tokens", "reused_tokens", "new_tokens", "rounds_dropped",
                "generate_seconds", "prompts_windowed")

    def __init__(self, model, tokenizer, *, max_new_tokens: int, temperature: float, top_p: float = 1.0,
                 batch_size: int = 16, seed: int = 0, max_prompt_tokens: int | None = None,
                 counters: dict | None = None):
        from chatalign.rollout.engine import decode_pad_id, default_stop_token_ids

        self.model, self.tokenizer = model, tokenizer
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        self.batch_size, self.seed, self.max_prompt_tokens = batch_size, seed, max_prompt_tokens
        self.tally = zeroed_counters(counters, self.COUNTERS)
        self.store = PrefixStore()
        self.calls = 0
        self.stops = default_stop_token_ids(tokenizer)
        self.pad_id = decode_pad_id(tokenizer, self.stops)
        self.device = next(model.parameters()).device

    def __call__(self, prompts: list[list[dict]], k: int) -> list[list[Candidate]]:
        import time

        from chatalign.rollout.engine import sampling_generator
        from chatalign.rollout.inference import inference
        from chatalign.rollout.sampling import TokenRecorder

        ids = fit_prompts(self.tokenizer, prompts, self.max_prompt_tokens, self.tally)
        t0 = time.perf_counter()
        recorder = TokenRecorder(len(ids) * k, max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                                 top_p=self.top_p, stop_token_ids=self.stops,
                                 generator=sampling_generator(self.device, self.seed + self.calls, self.temperature),
                                 return_logprobs=False, device=self.device)
        self.calls += 1
        with inference(self.model):
            kept = self._decode(ids, k, recorder)
        self.store.replace(kept)
        self.tally["generate_seconds"] += time.perf_counter() - t0
        self.tally["prompt_tokens"] += sum(len(i) for i in ids)
        self.tally["new_tokens"] += sum(len(r) for r in recorder.responses)
        texts = self.tokenizer.batch_decode(recorder.responses, skip_special_tokens=True)
        return [[Candidate(texts[p * k + s], recorder.finished[p * k + s]) for s in range(k)]
                for p in range(len(ids))]

    def _decode(self, ids: list[list[int]], k: int, recorder) -> list[KeptPrompt]:
        """Decode k answers to each prompt into `recorder`, longest prompts first (a group's rows then need
        little padding); return every answer's keys/values for the next call."""
        per_group = max(1, self.batch_size // k)
        order = sorted(range(len(ids)), key=lambda i: (-len(ids[i]), i))
        kept: list[KeptPrompt] = []

        def fed(item: int) -> list[int]:  # the tokens in an answer's cache row: prompt + answer but its last
            return ids[item // k] + recorder.responses[item][:-1]

        for start in range(0, len(order), per_group):
            group = order[start:start + per_group]
            reuse = [self.store.best(ids[i]) for i in group]
            batch, logits = prefill_batch(self.model, [ids[i] for i in group], reuse, k, self.pad_id, self.device)
            batch.rows = [i * k + s for i in group for s in range(k)]
            self.tally["reused_tokens"] += sum(r for _, r in reuse)
            self.tally["prefill_tokens"] += sum(len(ids[i]) - r for i, (_, r) in zip(group, reuse, strict=True))
            batch.last, alive = recorder.advance(batch.rows, logits)
            batch = keep_finished(batch, alive, fed, kept)
            while batch is not None:
                logits = batch.step(self.model)
                batch.last, alive = recorder.advance(batch.rows, logits)
                batch = keep_finished(batch, alive, fed, kept)
        return kept
