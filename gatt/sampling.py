"""The model side of the dialogue driver: an AnswerFn that samples with the rollout engine (or, with
`reuse_prefix`, the prefix-cached decoder of `chatalign.gatt.prefix_cache`). Prompts longer than
`max_prompt_tokens` are windowed (`chatalign.gatt.prompt_window`).
"""

from __future__ import annotations

from chatalign.gatt.prompt_window import fit_prompts, zeroed_counters
from chatalign.gatt.turns import AnswerFn, Candidate

COUNTERS = ("prompt_tokens", "new_tokens", "rounds_dropped", "generate_seconds", "prompts_windowed")


def model_answer_fn(model, tokenizer, *, max_new_tokens: int, temperature: float, top_p: float = 1.0,
                    batch_size: int = 16, seed: int = 0, max_prompt_tokens: int | None = None,
                    counters: dict | None = None, reuse_prefix: bool = False) -> AnswerFn:
    """An AnswerFn over `model` (a loaded model, or a generator of chatalign.rollout.generator: the native engine
    or vLLM); call i draws with seed + i, so a run is reproducible.

    `counters` (optional) accumulates prompt tokens, new tokens, dropped rounds and generation seconds.
    `reuse_prefix`: keep each dialogue's keys/values between turns (`chatalign.gatt.prefix_cache`): the same
    answers for a fraction of the prefill, at the memory cost of one cache per dialogue.
    """
    import time

    from chatalign.rollout.generator import NativeGenerator, as_generator

    generator = as_generator(model)
    if reuse_prefix and isinstance(generator, NativeGenerator):  # vLLM caches prefixes by itself
        from chatalign.gatt.prefix_cache import PrefixCachedAnswerer

        return PrefixCachedAnswerer(generator.get_model(), tokenizer, max_new_tokens=max_new_tokens,
                                    temperature=temperature, top_p=top_p, batch_size=batch_size, seed=seed,
                                    max_prompt_tokens=max_prompt_tokens, counters=counters)

    calls = [0]
    tally = zeroed_counters(counters, COUNTERS)

    def answer(prompts: list[list[dict]], k: int) -> list[list[Candidate]]:
        ids = fit_prompts(tokenizer, prompts, max_prompt_tokens, tally)
        t0 = time.perf_counter()
        outs = generator.rollouts(tokenizer, ids, num_samples=k, max_new_tokens=max_new_tokens,
                                  temperature=temperature, top_p=top_p, batch_size=batch_size,
                                  seed=seed + calls[0], return_logprobs=False)
        calls[0] += 1
        tally["generate_seconds"] += time.perf_counter() - t0
        tally["prompt_tokens"] += sum(len(i) for i in ids) * k
        tally["new_tokens"] += sum(len(o.response_ids) for o in outs)
        grouped: list[list[Candidate]] = [[] for _ in prompts]
        for o in outs:  # ordered by (prompt_index, sample_index)
            grouped[o.prompt_index].append(Candidate(o.text, o.finished))
        return grouped

    return answer
