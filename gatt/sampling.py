"""The model side of the dialogue driver: an AnswerFn that samples with the rollout engine.

Long dialogues can outgrow a small model's context (or a CPU's patience): with `max_prompt_tokens`, the
oldest rounds *after the first* are left out of the prompt until it fits. The first round stays because it
holds the instruction (first_user placement); the system message always stays. With such a window the
instruction is never more than a few rounds back, so adherence measured that way is an upper bound of the
unwindowed one: the evaluation report says when a window was used.
"""

from __future__ import annotations

from chatalign.gatt.turns import AnswerFn, Candidate


def drop_second_round(messages: list[dict]) -> list[dict] | None:
    """Messages without the round after the first one (system and first round kept); None if none is left."""
    start = 1 if messages and messages[0]["role"] == "system" else 0
    users = [i for i in range(start, len(messages)) if messages[i]["role"] == "user"]
    if len(users) < 3:  # first round + the round being answered: nothing in between to drop
        return None
    return messages[:users[1]] + messages[users[2]:]


def fit_prompt(tokenizer, messages: list[dict], max_prompt_tokens: int | None) -> tuple[list[int], int]:
    """Prompt ids within `max_prompt_tokens` (dropping middle rounds), and how many rounds were dropped."""
    from chatalign.text.masks import encode_prompt

    ids = encode_prompt(tokenizer, messages)
    dropped = 0
    while max_prompt_tokens is not None and len(ids) > max_prompt_tokens:
        shorter = drop_second_round(messages)
        if shorter is None:
            break  # the first round and the question alone are too long: sent as they are
        messages, dropped = shorter, dropped + 1
        ids = encode_prompt(tokenizer, messages)
    return ids, dropped


def model_answer_fn(model, tokenizer, *, max_new_tokens: int, temperature: float, top_p: float = 1.0,
                    batch_size: int = 16, seed: int = 0, max_prompt_tokens: int | None = None,
                    counters: dict | None = None, reuse_prefix: bool = False) -> AnswerFn:
    """An AnswerFn over `generate_rollouts`; call i draws with seed + i, so a run is reproducible.

    `counters` (optional) accumulates prompt tokens, new tokens, dropped rounds and generation seconds.
    `reuse_prefix`: keep each dialogue's keys/values between turns (`chatalign.gatt.prefix_cache`): the same
    answers for a fraction of the prefill, at the memory cost of one cache per dialogue.
    """
    import time

    if reuse_prefix:
        from chatalign.gatt.prefix_cache import prefix_cached_answer_fn

        return prefix_cached_answer_fn(model, tokenizer, max_new_tokens=max_new_tokens, temperature=temperature,
                                       top_p=top_p, batch_size=batch_size, seed=seed,
                                       max_prompt_tokens=max_prompt_tokens, counters=counters)

    from chatalign.rollout.engine import generate_rollouts

    calls = [0]
    tally = counters if counters is not None else {}
    for key in ("prompt_tokens", "new_tokens", "rounds_dropped", "generate_seconds", "prompts_windowed"):
        tally.setdefault(key, 0)

    def answer(prompts: list[list[dict]], k: int) -> list[list[Candidate]]:
        fitted = [fit_prompt(tokenizer, p, max_prompt_tokens) for p in prompts]
        ids = [f[0] for f in fitted]
        t0 = time.perf_counter()
        outs = generate_rollouts(model, tokenizer, ids, num_samples=k, max_new_tokens=max_new_tokens,
                                 temperature=temperature, top_p=top_p, batch_size=batch_size,
                                 seed=seed + calls[0], return_logprobs=False)
        calls[0] += 1
        tally["generate_seconds"] += time.perf_counter() - t0
        tally["prompt_tokens"] += sum(len(i) for i in ids) * k
        tally["new_tokens"] += sum(len(o.response_ids) for o in outs)
        tally["rounds_dropped"] += sum(f[1] for f in fitted)
        tally["prompts_windowed"] += sum(f[1] > 0 for f in fitted)
        grouped: list[list[Candidate]] = [[] for _ in prompts]
        for o in outs:  # ordered by (prompt_index, sample_index)
            grouped[o.prompt_index].append(Candidate(o.text, o.finished))
        return grouped

    return answer
