"""Ghost Attention data (Llama 2 sec. 3.3): sample with the instruction in every user turn, train without it.

1. `synthesize`: the instruction is prepended to every user message and the current model answers turn by
   turn (batched across dialogues per turn; `chatalign.gatt.turns`). With rejection on, the first of the
   `candidates` answers that passes the rule checkers is kept.
2. `training_rows`: the instruction is dropped from every user message but the first (or moved to a system
   message), and each dialogue prefix that ends at an assistant turn k >= min_turn becomes one Conversation.
   Rows train with `train_on: last_assistant`: loss 0 on every token of earlier turns, assistant turns
   included, as the paper describes; only the answer at turn k is learned.
Rejection (`reject`): a row whose final answer fails a constraint is not emitted. on_failure="drop_row" drops
that row only (later turns stay, with the failing answer in their context); "cut_dialogue" also drops every
later row of that dialogue, so a kept row never shows a failing answer in its context.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from chatalign.data_schemas import Conversation
from chatalign.errors import ConfigError
from chatalign.gatt.dialogues import Dialogue
from chatalign.gatt.instructions import Instruction
from chatalign.gatt.turns import AnswerFn, DialogueRun, prompt_messages, run_dialogues

PLACEMENTS = ("first_user", "system")
ON_FAILURE = ("drop_row", "cut_dialogue")


def synthesize(dialogues: Sequence[Dialogue], instructions: Sequence[Instruction], answer_fn: AnswerFn, *,
               max_turns: int | None = None, candidates: int = 1, reject: bool = True,
               unfinished: str = "trim_to_sentence",
               on_turn: Callable[[int, int], None] | None = None) -> tuple[list[DialogueRun], dict]:
    """Sample every dialogue's answers with the instruction in every user message (an empty answer ends it)."""
    return run_dialogues(dialogues, instructions, answer_fn, instruction_in="every_user", max_turns=max_turns,
                         candidates=candidates, pick_passing=reject, unfinished=unfinished, stop_on_empty=True,
                         on_turn=on_turn)


def training_messages(run: DialogueRun, k: int, placement: str = "first_user") -> list[dict]:
    """The dialogue through assistant turn k (1-based), the instruction only where `placement` puts it."""
    if placement not in PLACEMENTS:
        raise ConfigError(f"placement={placement!r}: expected one of {', '.join(PLACEMENTS)}")
    if not 1 <= k <= len(run.answers):
        raise ValueError(f"turn {k} out of range: the dialogue has {len(run.answers)} answers")
    msgs = prompt_messages(run.dialogue.user_turns, run.answers[:k - 1], run.instruction.text, placement)
    msgs.append({"role": "assistant", "content": run.answers[k - 1]})
    return msgs


def training_rows(runs: Sequence[DialogueRun], *, placement: str = "first_user", min_turn: int = 1,
                  reject: bool = True, on_failure: str = "drop_row") -> tuple[list[Conversation], dict]:
    """One Conversation per kept dialogue prefix (see the module docstring), with counts of what was dropped."""
    if on_failure not in ON_FAILURE:
        raise ConfigError(f"on_failure={on_failure!r}: expected one of {', '.join(ON_FAILURE)}")
    if min_turn < 1:
        raise ConfigError(f"min_turn must be >= 1, got {min_turn}")
    rows: list[Conversation] = []
    stats = {"answers": 0, "rows": 0, "below_min_turn": 0, "rejected": 0, "cut_after_failure": 0}
    per_family: Counter = Counter()
    per_turn: Counter = Counter()
    for run in runs:
        failed_before = False
        for k in range(1, len(run.answers) + 1):
            stats["answers"] += 1
            passed = run.checks[k - 1]["all"]
            if reject and failed_before and on_failure == "cut_dialogue":
                stats["cut_after_failure"] += 1
                continue
            if reject and not passed:
                stats["rejected"] += 1
                failed_before = True
                continue
            if k < min_turn:
                stats["below_min_turn"] += 1
                continue
            families = sorted(run.instruction.constraints)
            tags = ["gatt", f"turn:{k}", "terse" if run.instruction.terse else "full", *families]
            rows.append(Conversation.model_validate(
                {"id": f"{run.dialogue.id}:turn{k}", "tags": tags,
                 "messages": training_messages(run, k, placement)}))
            per_family.update(families)
            per_turn[k] += 1
    stats["rows"] = len(rows)
    stats["rows_per_family"] = dict(sorted(per_family.items()))
    stats["rows_per_turn"] = {str(k): v for k, v in sorted(per_turn.items())}
    return rows, stats


def pass_rates(runs: Sequence[DialogueRun]) -> dict:
    """Share of kept answers passing each family's checker during synthesis (instruction in every turn)."""
    seen: Counter = Counter()
    passed: Counter = Counter()
    for run in runs:
        for check in run.checks:
            for family, ok in check.items():
                seen[family] += 1
                passed[family] += int(ok)
    return {f: round(passed[f] / seen[f], 4) for f in sorted(seen)}
