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

from chatalign.gatt.turns import AnswerFn, Candidate


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
    from chatalign.rollout.batch import supports_logits_to_keep
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
    out = model(input_ids=ids.to(device), attention_mask=mask, position_ids=pos.to(device), past_key_values=cache,
                use_cache=True, **kwargs)
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


def prefix_cached_answer_fn(model, tokenizer, *, max_new_tokens: int, temperature: float, top_p: float = 1.0,
                            batch_size: int = 16, seed: int = 0, max_prompt_tokens: int | None = None,
                            counters: dict | None = None) -> AnswerFn:
    """An AnswerFn that reuses each dialogue's previous prompt (see the module docstring); call i samples
    with seed + i, so a run is reproducible. Prompts run in groups of batch_size // k (k answers each)."""
    import time

    from chatalign.gatt.sampling import fit_prompt
    from chatalign.rollout.engine import default_stop_token_ids
    from chatalign.rollout.sampling import TokenRecorder

    store = PrefixStore()
    calls = [0]
    tally = counters if counters is not None else {}
    for key in ("prompt_tokens", "prefill_tokens", "reused_tokens", "new_tokens", "rounds_dropped",
                "generate_seconds", "prompts_windowed"):
        tally.setdefault(key, 0)
    stops = default_stop_token_ids(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (stops[0] if stops else 0)
    device = next(model.parameters()).device

    def answer(prompts: list[list[dict]], k: int) -> list[list[Candidate]]:
        fitted = [fit_prompt(tokenizer, p, max_prompt_tokens) for p in prompts]
        ids = [f[0] for f in fitted]
        t0 = time.perf_counter()
        generator = None
        if temperature > 0:
            generator = torch.Generator(device=device)
            generator.manual_seed(seed + calls[0])
        calls[0] += 1
        recorder = TokenRecorder(len(ids) * k, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                                 stop_token_ids=stops, generator=generator, return_logprobs=False, device=device)
        per_group = max(1, batch_size // k)
        # Longest first, so that a group's rows need little padding.
        order = sorted(range(len(ids)), key=lambda i: (-len(ids[i]), i))
        kept_all: list[KeptPrompt] = []

        def fed(item: int) -> list[int]:  # the tokens in an answer's cache row: prompt + answer but its last
            return ids[item // k] + recorder.responses[item][:-1]

        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(order), per_group):
                    group = order[start:start + per_group]
                    reuse = [store.best(ids[i]) for i in group]
                    batch, logits = prefill_batch(model, [ids[i] for i in group], reuse, k, pad_id, device)
                    batch.rows = [i * k + s for i in group for s in range(k)]
                    tally["reused_tokens"] += sum(r for _, r in reuse)
                    tally["prefill_tokens"] += sum(len(ids[i]) - r for i, (_, r) in zip(group, reuse, strict=True))
                    batch.last, alive = recorder.advance(batch.rows, logits)
                    batch = keep_finished(batch, alive, fed, kept_all)
                    while batch is not None:
                        logits = batch.step(model)
                        batch.last, alive = recorder.advance(batch.rows, logits)
                        batch = keep_finished(batch, alive, fed, kept_all)
        finally:
            model.train(was_training)
        store.replace(kept_all)
        tally["generate_seconds"] += time.perf_counter() - t0
        tally["prompt_tokens"] += sum(len(i) for i in ids)
        tally["new_tokens"] += sum(len(r) for r in recorder.responses)
        tally["rounds_dropped"] += sum(f[1] for f in fitted)
        tally["prompts_windowed"] += sum(f[1] > 0 for f in fitted)
        texts = tokenizer.batch_decode(recorder.responses, skip_special_tokens=True)
        return [[Candidate(texts[p * k + s], recorder.finished[p * k + s]) for s in range(k)]
                for p in range(len(ids))]

    answer.store = store  # what the next call can reuse (read by the tests)
    return answer
