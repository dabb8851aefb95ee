"""Adherence evaluation (`chatalign eval gatt`), the shape of Llama 2's Table 30.

Each held-out dialogue gets one synthesized instruction, placed only in the system message or the first user
message. The model answers every user turn greedily with its own earlier answers in the context; each answer
is scored by the rule checkers (`chatalign.gatt.checkers`). Adherence at turn t is the share of dialogues with
at least t user turns whose t-th answer passes every constraint ("all"), and per family the share of those
dialogues carrying that family whose answer passes it. The same dialogues and instructions (same seed) are
used before and after GAtt, so the two are paired.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from chatalign.gatt.checkers import HEURISTIC_FAMILIES, MIN_LANGUAGE_LETTERS
from chatalign.gatt.dialogues import Dialogue
from chatalign.gatt.instructions import FAMILIES, Instruction
from chatalign.gatt.turns import DialogueRun, run_dialogues

ROOT = Path(__file__).resolve().parents[1]
BUNDLED_HELDOUT = ROOT / "data" / "quickstart" / "gatt_dialogues_heldout.jsonl"
BUNDLED_CONSTRAINTS = ROOT / "data" / "quickstart" / "gatt_constraints.yaml"
PAPER_TURNS = (2, 4, 6, 20)

CHECKER_NOTE = (
    "Checkers: `answer_length` (at most N words) and `format` (uppercase) are exact rules. `language` uses "
    f"langdetect (seeded); an answer under {MIN_LANGUAGE_LETTERS} letters cannot be identified and counts as "
    "not adhering. `public_figure` and `hobby` are **heuristics**: the answer must mention the figure's name or "
    "the hobby (keywords, English only), so an answer in character that never names them counts as a failure "
    "and a mere mention counts as a success.")


def select_dialogues(dialogues: Sequence[Dialogue], n: int, max_turn: int) -> list[Dialogue]:
    """`n` dialogues, those reaching `max_turn` first (file order), then the longest others."""
    long_enough = [d for d in dialogues if len(d.user_turns) >= max_turn]
    shorter = sorted((d for d in dialogues if len(d.user_turns) < max_turn), key=lambda d: -len(d.user_turns))
    return (long_enough + shorter)[:n]


def limit_long_dialogues(dialogues: Sequence[Dialogue], turns: Sequence[int], n_long: int | None) -> list[Dialogue]:
    """Only the first `n_long` dialogues run to the last reported turn; the others stop at the one before it.

    A turn costs a prefill of the whole history, so a 20-turn dialogue costs about 8x a 6-turn one: many
    dialogues for turns 2/4/6 and a few for turn 20 keep a CPU evaluation short. None: all run to the end.
    """
    ordered = sorted(set(turns))
    if n_long is None or len(ordered) < 2:
        return list(dialogues)
    stop = ordered[-2]
    return [d if i < n_long else Dialogue(d.id, d.user_turns[:stop]) for i, d in enumerate(dialogues)]


def adherence_by_turn(runs: Sequence[DialogueRun]) -> dict[int, dict]:
    """{turn: {"n", "all", <family>: rate, "n_<family>": count}} over the dialogues answered at that turn."""
    out: dict[int, dict] = {}
    longest = max((len(r.checks) for r in runs), default=0)
    for t in range(1, longest + 1):
        answered = [r for r in runs if len(r.checks) >= t]
        row: dict = {"n": len(answered), "all": sum(r.checks[t - 1]["all"] for r in answered) / len(answered)}
        for family in FAMILIES:
            having = [r for r in answered if family in r.instruction.constraints]
            if having:
                row[family] = sum(r.checks[t - 1][family] for r in having) / len(having)
                row[f"n_{family}"] = len(having)
        out[t] = row
    return out


def evaluate_adherence(model, tokenizer, dialogues: Sequence[Dialogue], instructions: Sequence[Instruction], *,
                       placement: str = "first_user", max_turn: int = 20, max_new_tokens: int = 128,
                       batch_size: int = 16, max_prompt_tokens: int | None = None, progress: bool = False,
                       reuse_prefix: bool = False) -> dict:
    """Greedy multi-turn answers, checked per turn; JSON-ready (by_turn keys are turn numbers as strings)."""
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
    runs, stats = run_dialogues(dialogues, instructions, answer, instruction_in=placement, max_turns=max_turn,
                                on_turn=on_turn)
    by_turn = adherence_by_turn(runs)
    return {"by_turn": {str(t): row for t, row in by_turn.items()}, "placement": placement,
            "max_turn": max_turn, "max_new_tokens": max_new_tokens, "max_prompt_tokens": max_prompt_tokens,
            "stats": stats, "generation": {k: round(v, 2) if isinstance(v, float) else v for k, v in counters.items()},
            "seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(time.process_time() - cpu0, 1),
            "dialogues": [r.to_dict() for r in runs]}


def table_rows(results: dict[str, dict], turns: Sequence[int]) -> list[dict]:
    """One row per (model, turn) with n, overall and per-family adherence in percent ("-": no such dialogue)."""
    rows = []
    for label, res in results.items():
        for t in turns:
            row = res["by_turn"].get(str(t))
            out = {"model": label, "turn": t, "n": row["n"] if row else 0,
                   "all": f"{100 * row['all']:.0f}%" if row else "-"}
            for family in FAMILIES:
                out[family] = f"{100 * row[family]:.0f}% ({row['n_' + family]})" if row and family in row else "-"
            rows.append(out)
    return rows


def format_table(results: dict[str, dict], turns: Sequence[int]) -> str:
    from chatalign.plots import markdown_table

    families = [f for f in FAMILIES if any(f in row for res in results.values() for row in res["by_turn"].values())]
    return markdown_table(table_rows(results, turns), ["model", "turn", "n", "all", *families])


def heuristic_note() -> str:
    return CHECKER_NOTE + f" Heuristic families: {', '.join(HEURISTIC_FAMILIES)}."
