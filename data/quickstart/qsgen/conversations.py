"""Helpful-task dialogues: SFT conversations (single and multi-turn) and held-out prompts with check + reference."""

from __future__ import annotations

from random import Random

from qsgen import tasks_format, tasks_numeric, tasks_text
from qsgen.sample import Sample

# task -> (make, follow-up or None, weight in the mix)
TASKS = {
    "arithmetic": (tasks_numeric.make_arithmetic, tasks_numeric.follow_arithmetic, 16),
    "unit_conversion": (tasks_numeric.make_conversion, tasks_numeric.follow_conversion, 12),
    "bullets": (tasks_format.make_bullets, tasks_format.follow_bullets, 12),
    "json": (tasks_format.make_json, None, 10),
    "word_limit": (tasks_format.make_word_limit, tasks_format.follow_word_limit, 10),
    "extraction": (tasks_text.make_extraction, tasks_text.follow_extraction, 12),
    "case": (tasks_format.make_case, tasks_format.follow_case, 10),
    "sorting": (tasks_numeric.make_sorting, tasks_numeric.follow_sorting, 10),
    "chit_chat": (tasks_text.make_chit_chat, None, 8),
}
SYSTEM_PROMPTS = {
    "train": [
        "You are a helpful assistant.",
        "You are a concise and accurate assistant.",
        "Answer briefly and follow the user's formatting instructions exactly.",
    ],
    "heldout": ["You are a friendly assistant that follows instructions carefully."],
}


def pick_task(rng: Random) -> str:
    names = list(TASKS)
    return rng.choices(names, weights=[TASKS[n][2] for n in names])[0]


def make_sample(rng: Random, split: str, task: str | None = None) -> Sample:
    return TASKS[task or pick_task(rng)][0](rng, split)


def dialogue(rng: Random, split: str, user_turns: int, task: str | None = None) -> list[Sample]:
    """`user_turns` samples; later ones follow up on the previous turn where the task allows it."""
    turns = [make_sample(rng, split, task)]
    while len(turns) < user_turns:
        follow = TASKS[turns[-1].task][1]
        if follow is not None and rng.random() < 0.6:
            turns.append(follow(turns[-1], rng, split))
        else:
            turns.append(make_sample(rng, split))
    return turns


def to_messages(rng: Random, split: str, turns: list[Sample], final_answer: bool) -> list[dict]:
    messages = []
    if rng.random() < 0.15:
        messages.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS[split])})
    for i, sample in enumerate(turns):
        messages.append({"role": "user", "content": sample.prompt})
        if final_answer or i < len(turns) - 1:
            messages.append({"role": "assistant", "content": sample.answer})
    return messages


def tags_for(turns: list[Sample]) -> list[str]:
    """The task of the last (checked) user turn first, then "multi_turn" for dialogues of 2+ user turns."""
    return [turns[-1].task] + (["multi_turn"] if len(turns) > 1 else [])


def user_key(messages: list[dict]) -> tuple[str, ...]:
    return tuple(m["content"] for m in messages if m["role"] == "user")


def turn_count(rng: Random, multi_share: float) -> int:
    return rng.choice([2, 2, 3]) if rng.random() < multi_share else 1


def sft_conversations(rng: Random, split: str, n: int, id_prefix: str) -> list[dict]:
    rows, seen = [], set()
    while len(rows) < n:
        turns = dialogue(rng, split, turn_count(rng, 0.4))
        messages = to_messages(rng, split, turns, final_answer=True)
        if user_key(messages) in seen:
            continue
        seen.add(user_key(messages))
        rows.append({"id": f"{id_prefix}-{len(rows) + 1:04d}", "messages": messages, "tags": tags_for(turns)})
    return rows


def helpful_prompt_rows(
    rng: Random,
    split: str,
    n: int,
    id_prefix: str,
    multi_share: float = 0.3,
    check_override: dict | None = None,
    with_reference: bool = True,
) -> list[dict]:
    """Prompt rows ending with a user turn, with the rule `check` of that turn (and a `reference` answer)."""
    rows, seen = [], set()
    while len(rows) < n:
        turns = dialogue(rng, split, turn_count(rng, multi_share))
        messages = to_messages(rng, split, turns, final_answer=False)
        if user_key(messages) in seen:
            continue
        seen.add(user_key(messages))
        last = turns[-1]
        row = {
            "id": f"{id_prefix}-{len(rows) + 1:04d}",
            "messages": messages,
            "is_safety": False,
            "check": check_override or last.check,
            "tags": tags_for(turns),
        }
        if with_reference:
            row["reference"] = last.answer
        rows.append(row)
    return rows
