"""The held-out instruction kinds of data/independent (written apart from the training data, never trained
on): gatt_instructions.jsonl rows {"id", "kind", "instruction", "terse", "check"} (check: a
`chatalign.judges.rules` spec) and gatt_dialogues.jsonl rows {"id", "user_turns"}.

Each evaluated dialogue gets one instruction; the instructions are taken round-robin over their kinds
(lowercase 1, ends_question 1, ..., lowercase 2, ...) so that any first n of them, the long dialogues
included, cover the kinds evenly.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from chatalign.errors import DataError
from chatalign.gatt.dialogues import Dialogue, load_dialogues
from chatalign.gatt.instructions import Instruction

INSTRUCTIONS_FILE = "gatt_instructions.jsonl"
DIALOGUES_FILE = "gatt_dialogues.jsonl"
WORDINGS = ("full", "terse", "alternate")


def _instruction_row(row: object, where: str) -> dict:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected an object")
    for key in ("kind", "instruction", "check"):
        if key not in row:
            raise DataError(f"{where}: {key}: missing")
    if not isinstance(row["check"], dict) or "type" not in row["check"]:
        raise DataError(f"{where}: check: expected a rules check spec with a type")
    if not isinstance(row["instruction"], str) or not row["instruction"].strip():
        raise DataError(f"{where}: instruction: must be non-empty text")
    return row


def load_heldout_instructions(path: str | Path) -> list[dict]:
    """The rows of a gatt_instructions.jsonl file, validated, in file order."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    rows = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(_instruction_row(json.loads(line), f"{p}:{n}"))
            except ValueError as exc:
                raise DataError(f"{p}:{n}: invalid JSON: {exc}") from None
    if not rows:
        raise DataError(f"{p}: no instructions")
    return rows


def round_robin_by_kind(rows: list[dict]) -> list[dict]:
    """The rows reordered kind 1 row 1, kind 2 row 1, ..., kind 1 row 2, ... (kinds in order of appearance)."""
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_kind[row["kind"]].append(row)
    out, depth = [], max(len(v) for v in by_kind.values())
    for i in range(depth):
        out += [rows_of_kind[i] for rows_of_kind in by_kind.values() if i < len(rows_of_kind)]
    return out


def as_instruction(row: dict, terse: bool) -> Instruction:
    """The row's instruction (its terse wording where asked and given), constrained by its check spec."""
    text = row.get("terse") if terse and row.get("terse") else row["instruction"]
    return Instruction(text, {row["kind"]: dict(row["check"])}, terse=terse and bool(row.get("terse")))


def heldout_pairs(instructions_file: str | Path, dialogues_file: str | Path, n: int, n_long: int | None,
                  short_turns: int, max_turn: int, wording: str = "full") -> tuple[list[Dialogue], list[Instruction]]:
    """`n` dialogues (cut to `max_turn` turns; all but the first `n_long` to `short_turns`) and one held-out
    instruction each, round-robin over kinds; wording "alternate": every other dialogue gets the terse one."""
    if wording not in WORDINGS:
        raise DataError(f"wording {wording!r}: expected one of {', '.join(WORDINGS)}")
    rows = round_robin_by_kind(load_heldout_instructions(instructions_file))
    dialogues = load_dialogues(dialogues_file)
    dialogues = sorted(dialogues, key=lambda d: -min(len(d.user_turns), max_turn))  # stable: longest first
    out_d, out_i = [], []
    for i in range(n):
        d = dialogues[i % len(dialogues)]
        stop = max_turn if n_long is None or i < n_long else short_turns
        out_d.append(Dialogue(d.id if i < len(dialogues) else f"{d.id}#{i // len(dialogues)}", d.user_turns[:stop]))
        terse = wording == "terse" or (wording == "alternate" and i % 2 == 1)
        out_i.append(as_instruction(rows[i % len(rows)], terse))
    return out_d, out_i
