"""Adherence evaluation (`chatalign eval gatt`, the GAtt stage's before/after), the shape of Llama 2's Table 30.

Each evaluated dialogue gets one instruction, placed only in the system message or only in the first user
message. The model answers every user turn greedily with its own earlier answers in the context; each answer
is scored by the rule checkers (`chatalign.gatt.checkers`). Adherence at turn t is the share of dialogues with
at least t user turns whose t-th answer passes every constraint ("all"), and per kind the share of those
dialogues carrying that kind whose answer passes it. The summary: the mean of the per-turn adherence over
turns 4..last (the issue's "turns 4-20") and the adherence at the last turn.

Several groups (suite x placement: the training kinds on the bundled held-out dialogues, the held-out kinds
of data/independent) run as one batched pass per model (`evaluate_groups`): more prompts per decode step
is what a CPU does fastest. The same dialogues and instructions are used for every model, so the numbers are
paired.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chatalign.gatt.checkers import HEURISTIC_KINDS
from chatalign.gatt.dialogues import Dialogue
from chatalign.gatt.instructions import Instruction
from chatalign.gatt.turns import DialogueRun, run_dialogues
from chatalign.judges.rules import MIN_LANGUAGE_LETTERS

ROOT = Path(__file__).resolve().parents[1]
BUNDLED_HELDOUT = ROOT / "data" / "quickstart" / "gatt_dialogues_heldout.jsonl"
BUNDLED_CONSTRAINTS = ROOT / "data" / "quickstart" / "gatt_constraints.yaml"
PAPER_TURNS = (2, 4, 6, 20)
SUMMARY_FROM = 4  # the summary averages turns 4..last: past the first turns, where GAtt matters

CHECKER_NOTE = (
    "Checkers: form kinds (phrases, case, word limit, lists, JSON, emoji) and the held-out kinds' rule specs are "
    f"exact rules. `language` uses langdetect (seeded); an answer under {MIN_LANGUAGE_LETTERS} letters cannot be "
    "identified and counts as not adhering. Mentions (keyword, name, public figure, hobby) are **heuristics**: "
    "the answer must name the word, so an answer in character that never names it counts as a failure and a "
    "mere mention counts as a success.")


@dataclass(frozen=True)
class EvalGroup:
    suite: str  # "in_distribution" (training kinds) or "independent" (held-out kinds)
    placement: str  # "system" or "first_user"
    dialogues: list[Dialogue]
    instructions: list[Instruction]

    @property
    def name(self) -> str:
        return f"{self.suite}/{self.placement}"


def select_dialogues(dialogues: Sequence[Dialogue], n: int, max_turn: int) -> list[Dialogue]:
    """`n` dialogues, those reaching `max_turn` first (file order), then the longest others."""
    long_enough = [d for d in dialogues if len(d.user_turns) >= max_turn]
    shorter = sorted((d for d in dialogues if len(d.user_turns) < max_turn), key=lambda d: -len(d.user_turns))
    return (long_enough + shorter)[:n]


def limit_long_dialogues(dialogues: Sequence[Dialogue], turns: Sequence[int], n_long: int | None) -> list[Dialogue]:
    """Only the first `n_long` dialogues run to the last reported turn; the others stop at the one before it;
    none runs past the last reported turn.

    A turn costs a prefill of the whole history, so a 20-turn dialogue costs about 8x a 6-turn one: many
    dialogues for turns 2/4/6 and a few for turn 20 keep a CPU evaluation short. None: all run to the end.
    """
    ordered = sorted(set(turns))
    last = ordered[-1]
    if n_long is None or len(ordered) < 2:
        return [Dialogue(d.id, d.user_turns[:last]) for d in dialogues]
    stop = ordered[-2]
    return [Dialogue(d.id, d.user_turns[:last if i < n_long else stop]) for i, d in enumerate(dialogues)]


def kinds_of(runs: Sequence[DialogueRun]) -> list[str]:
    """The constraint kinds of the runs' instructions, in order of first appearance."""
    return list(dict.fromkeys(k for r in runs for k in r.instruction.constraints))


def adherence_by_turn(runs: Sequence[DialogueRun]) -> dict[int, dict]:
    """{turn: {"n", "all", <kind>: rate, "n_<kind>": count}} over the dialogues answered at that turn."""
    out: dict[int, dict] = {}
    longest = max((len(r.checks) for r in runs), default=0)
    kinds = kinds_of(runs)
    for t in range(1, longest + 1):
        answered = [r for r in runs if len(r.checks) >= t]
        row: dict = {"n": len(answered), "all": sum(r.checks[t - 1]["all"] for r in answered) / len(answered)}
        for kind in kinds:
            having = [r for r in answered if kind in r.instruction.constraints]
            if having:
                row[kind] = sum(r.checks[t - 1][kind] for r in having) / len(having)
                row[f"n_{kind}"] = len(having)
        out[t] = row
    return out


def summarize(by_turn: dict, key: str = "all", first: int = SUMMARY_FROM) -> dict:
    """{"mean_from": mean of `key`'s per-turn adherence over turns first..last, "last": at the last turn,
    "last_turn", "n_last": dialogues there}; None values where no turn qualifies."""
    rows = {int(t): row for t, row in by_turn.items() if key in row}
    if not rows:
        return {"mean_from": None, "last": None, "last_turn": None, "n_last": 0, "first": first}
    last = max(rows)
    span = [rows[t][key] for t in sorted(rows) if t >= first]
    n_last = rows[last]["n"] if key == "all" else rows[last].get(f"n_{key}", 0)
    return {"mean_from": sum(span) / len(span) if span else None, "last": rows[last][key], "last_turn": last,
            "n_last": n_last, "first": first}


def retention(runs: Sequence[DialogueRun], first: int = SUMMARY_FROM) -> dict:
    """{"kept_at_1": dialogues whose turn-1 answer kept the instruction, "mean_from": over turns first..last, the
    mean share of those still keeping it (of those answered at the turn; None without such turns), "last_turn":
    the last turn any of them reached}.

    Separates what GAtt is for (keeping an instruction over the turns, Touvron et al. 2023 sec. 3.3) from
    whether the model can follow the instruction at all: a kind never kept at turn 1 has nothing to keep.
    """
    kept = [r for r in runs if r.checks and r.checks[0]["all"]]
    last = max((len(r.checks) for r in kept), default=0)
    shares = []
    for t in range(first, last + 1):
        answered = [r for r in kept if len(r.checks) >= t]
        shares.append(sum(r.checks[t - 1]["all"] for r in answered) / len(answered))
    return {"kept_at_1": len(kept), "mean_from": sum(shares) / len(shares) if shares else None,
            "last_turn": last or None}


def group_result(group: EvalGroup, runs: Sequence[DialogueRun]) -> dict:
    """One group's JSON: by_turn (keys are turn numbers as strings), the summary overall and per kind, the
    retention of instructions kept at turn 1."""
    by_turn = {str(t): row for t, row in adherence_by_turn(runs).items()}
    return {"suite": group.suite, "placement": group.placement, "by_turn": by_turn,
            "summary": {key: summarize(by_turn, key) for key in ["all", *kinds_of(runs)]},
            "retention": retention(runs), "dialogues": [r.to_dict() for r in runs]}


def evaluate_groups(model, tokenizer, groups: Sequence[EvalGroup], *, max_new_tokens: int = 128,
                    batch_size: int = 16, max_prompt_tokens: int | None = None, progress: bool = False,
                    reuse_prefix: bool = False) -> dict:
    """Greedy multi-turn answers for every group in one batched pass, checked per turn; JSON-ready."""
    import logging
    import time

    from chatalign.gatt.sampling import model_answer_fn

    log = logging.getLogger(__name__)
    counters: dict = {}
    answer = model_answer_fn(model, tokenizer, max_new_tokens=max_new_tokens, temperature=0.0,
                             batch_size=batch_size, max_prompt_tokens=max_prompt_tokens, counters=counters,
                             reuse_prefix=reuse_prefix)

    def on_turn(t: int, n: int) -> None:
        if progress:
            log.info("eval turn %d/%d (%.0f s generating so far)", t, n, counters["generate_seconds"])

    t0, cpu0 = time.perf_counter(), time.process_time()
    dialogues = [d for g in groups for d in g.dialogues]
    instructions = [i for g in groups for i in g.instructions]
    places = [g.placement for g in groups for _ in g.dialogues]
    runs, stats = run_dialogues(dialogues, instructions, answer, instruction_in=places, on_turn=on_turn)
    out, start = {}, 0
    for g in groups:
        out[g.name] = group_result(g, runs[start:start + len(g.dialogues)])
        start += len(g.dialogues)
    return {"groups": out, "max_new_tokens": max_new_tokens, "max_prompt_tokens": max_prompt_tokens,
            "stats": stats, "generation": {k: round(v, 2) if isinstance(v, float) else v for k, v in counters.items()},
            "seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(time.process_time() - cpu0, 1)}


def evaluate_adherence(model, tokenizer, dialogues: Sequence[Dialogue], instructions: Sequence[Instruction], *,
                       placement: str = "first_user", **kwargs) -> dict:
    """One group's evaluation (`evaluate_groups`), its result at the top level with the pass's settings."""
    res = evaluate_groups(model, tokenizer, [EvalGroup("eval", placement, list(dialogues), list(instructions))],
                          **kwargs)
    group = res.pop("groups")[f"eval/{placement}"]
    return {**group, **res}


def table_rows(results: dict[str, dict], turns: Sequence[int], kinds: Sequence[str]) -> list[dict]:
    """One row per (model, turn) with n, overall and per-kind adherence in percent ("-": no such dialogue)."""
    rows = []
    for label, res in results.items():
        for t in turns:
            row = res["by_turn"].get(str(t))
            out = {"model": label, "turn": t, "n": row["n"] if row else 0,
                   "all": f"{100 * row['all']:.0f}%" if row else "-"}
            for kind in kinds:
                out[kind] = f"{100 * row[kind]:.0f}% ({row['n_' + kind]})" if row and kind in row else "-"
            rows.append(out)
    return rows


def result_kinds(results: dict[str, dict]) -> list[str]:
    """The kinds found in any result's rows, in order of first appearance."""
    seen: dict[str, None] = {}
    for res in results.values():
        for row in res["by_turn"].values():
            seen.update((k, None) for k in row if k not in ("n", "all") and not k.startswith("n_"))
    return list(seen)


def format_table(results: dict[str, dict], turns: Sequence[int]) -> str:
    from chatalign.plots import markdown_table

    kinds = result_kinds(results)
    return markdown_table(table_rows(results, turns, kinds), ["model", "turn", "n", "all", *kinds])


def heuristic_note() -> str:
    return CHECKER_NOTE + f" Heuristic kinds: {', '.join(HEURISTIC_KINDS)}."
