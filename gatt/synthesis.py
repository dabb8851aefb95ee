"""Ghost Attention data (Llama 2 sec. 3.3): sample with the instruction in every user turn, train without it.

1. `synthesize`: the instruction is prepended to every user message and the current model answers turn by
   turn (batched across dialogues per turn; `chatalign.gatt.turns`). With rejection on, the first of the
   `candidates` answers that passes the rule checkers is kept; where none passes, the first that a faithful
   mechanical repair makes pass (`chatalign.gatt.repairs`: a phrase prepended, the text uppercased, ...),
   recorded as repaired.
2. `training_rows`: the instruction is dropped from every user message but the first, or moved to a system
   message (a share `system_share` of the dialogues, drawn with the seed: users give instructions as a system
   message, the paper puts it in the first user message), and each dialogue prefix that ends at an assistant
   turn k >= min_turn becomes one Conversation.
   Rows train with `train_on: last_assistant`: loss 0 on every token of earlier turns, assistant turns
   included, as the paper describes; only the answer at turn k is learned.
Rejection (`reject`): a row whose final answer fails a constraint is not emitted. on_failure="drop_row" drops
that row only (later turns stay, with the failing answer in their context); "cut_dialogue" also drops every
later row of that dialogue, so a kept row never shows a failing answer in its context.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from random import Random

from chatalign.data_schemas import Conversation
from chatalign.errors import ConfigError
from chatalign.gatt.dialogues import Dialogue
from chatalign.gatt.instructions import Instruction
from chatalign.gatt.turns import AnswerFn, DialogueRun, prompt_messages, run_dialogues

PLACEMENTS = ("first_user", "system")
ON_FAILURE = ("drop_row", "cut_dialogue")


def synthesize(dialogues: Sequence[Dialogue], instructions: Sequence[Instruction], answer_fn: AnswerFn, *,
               max_turns: int | None = None, candidates: int = 1, reject: bool = True, repair: bool = True,
               unfinished: str = "trim_to_sentence",
               on_turn: Callable[[int, int], None] | None = None) -> tuple[list[DialogueRun], dict]:
    """Sample every dialogue's answers with the instruction in every user message (an empty answer ends it);
    `repair`: where no candidate passes, keep one a repair makes pass (only with `reject`)."""
    from chatalign.gatt.repairs import repair as repair_fn

    return run_dialogues(dialogues, instructions, answer_fn, instruction_in="every_user", max_turns=max_turns,
                         candidates=candidates, pick_passing=reject, unfinished=unfinished, stop_on_empty=True,
                         repair=repair_fn if reject and repair else None, on_turn=on_turn)


def placements_for(n: int, system_share: float, seed: int) -> list[str]:
    """One placement per dialogue: exactly round(n * system_share) "system", the rest "first_user", shuffled
    with the seed (same arguments, same list)."""
    if not 0.0 <= system_share <= 1.0:
        raise ConfigError(f"system_share must be in [0, 1], got {system_share}")
    n_system = round(n * system_share)
    out = ["system" if i < n_system else "first_user" for i in range(n)]
    Random(f"{seed}:gatt-placement").shuffle(out)
    return out


def training_messages(run: DialogueRun, k: int, placement: str = "first_user") -> list[dict]:
    """The dialogue through assistant turn k (1-based), the instruction only where `placement` puts it."""
    if placement not in PLACEMENTS:
        raise ConfigError(f"placement={placement!r}: expected one of {', '.join(PLACEMENTS)}")
    if not 1 <= k <= len(run.answers):
        raise ValueError(f"turn {k} out of range: the dialogue has {len(run.answers)} answers")
    msgs = prompt_messages(run.dialogue.user_turns, run.answers[:k - 1], run.instruction.text, placement)
    msgs.append({"role": "assistant", "content": run.answers[k - 1]})
    return msgs


def training_rows(runs: Sequence[DialogueRun], *, placement: str | Sequence[str] = "first_user",
                  min_turn: int = 1, reject: bool = True,
                  on_failure: str = "drop_row") -> tuple[list[Conversation], dict]:
    """One Conversation per kept dialogue prefix (see the module docstring), with counts of what was dropped.
    `placement`: one for every dialogue, or one per run (`placements_for`)."""
    places = [placement] * len(runs) if isinstance(placement, str) else list(placement)
    if len(places) != len(runs):
        raise ConfigError(f"{len(places)} placements for {len(runs)} dialogues")
    if on_failure not in ON_FAILURE:
        raise ConfigError(f"on_failure={on_failure!r}: expected one of {', '.join(ON_FAILURE)}")
    if min_turn < 1:
        raise ConfigError(f"min_turn must be >= 1, got {min_turn}")
    rows: list[Conversation] = []
    stats = {"answers": 0, "rows": 0, "below_min_turn": 0, "rejected": 0, "cut_after_failure": 0}
    per_kind: Counter = Counter()
    per_turn: Counter = Counter()
    per_place: Counter = Counter()
    for run, place in zip(runs, places, strict=True):
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
            kinds = sorted(run.instruction.constraints)
            tags = ["gatt", f"turn:{k}", "terse" if run.instruction.terse else "full", f"placement:{place}",
                    *kinds]
            if k <= len(run.repaired) and run.repaired[k - 1]:
                tags.append("repaired")
            rows.append(Conversation.model_validate(
                {"id": f"{run.dialogue.id}:turn{k}", "tags": tags,
                 "messages": training_messages(run, k, place)}))
            per_kind.update(kinds)
            per_turn[k] += 1
            per_place[place] += 1
    stats["rows"] = len(rows)
    stats["rows_repaired"] = sum("repaired" in r.tags for r in rows)
    stats["rows_per_placement"] = dict(sorted(per_place.items()))
    stats["rows_per_kind"] = dict(sorted(per_kind.items()))
    stats["rows_per_turn"] = {str(k): v for k, v in sorted(per_turn.items())}
    return rows, stats


def repair_counts(runs: Sequence[DialogueRun]) -> dict:
    """Per kind: kept answers whose constraint of that kind a repair made pass."""
    counts: Counter = Counter(kind for run in runs for kinds in run.repaired for kind in kinds)
    return dict(sorted(counts.items()))


def pass_rates(runs: Sequence[DialogueRun]) -> dict:
    """Share of kept answers passing each kind's checker during synthesis (instruction in every turn; repaired
    answers count as passing: see `repair_counts`)."""
    seen: Counter = Counter()
    passed: Counter = Counter()
    for run in runs:
        for check in run.checks:
            for family, ok in check.items():
                seen[family] += 1
                passed[family] += int(ok)
    return {f: round(passed[f] / seen[f], 4) for f in sorted(seen)}
