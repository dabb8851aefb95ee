"""The prompt window of a long dialogue, shared by both AnswerFns (`chatalign.gatt.sampling` and
`chatalign.gatt.prefix_cache`).

Long dialogues can outgrow a small model's context (or a CPU's patience): with `max_prompt_tokens`, the
oldest rounds *after the first* are left out of the prompt until it fits. The first round stays because it
holds the instruction (first_user placement); the system message always stays. With such a window the
instruction is never more than a few rounds back, so adherence measured that way is an upper bound of the
unwindowed one: the evaluation report says when a window was used.
"""

from __future__ import annotations

from collections.abc import Sequence


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


def fit_prompts(tokenizer, prompts: list[list[dict]], max_prompt_tokens: int | None,
                counters: dict) -> list[list[int]]:
    """Each dialogue's prompt ids within the window; adds the dropped rounds and the windowed prompts to
    `counters` (rounds_dropped, prompts_windowed)."""
    fitted = [fit_prompt(tokenizer, p, max_prompt_tokens) for p in prompts]
    counters["rounds_dropped"] += sum(dropped for _, dropped in fitted)
    counters["prompts_windowed"] += sum(dropped > 0 for _, dropped in fitted)
    return [ids for ids, _ in fitted]


def zeroed_counters(counters: dict | None, keys: Sequence[str]) -> dict:
    """`counters` (a new dict if None) with every key of `keys` it lacks set to 0, in that order."""
    tally = counters if counters is not None else {}
    for key in keys:
        tally.setdefault(key, 0)
    return tally
