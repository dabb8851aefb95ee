"""The held-out instruction kinds of data/independent: rows validated, taken round-robin over kinds, paired
with dialogues (long ones first), full or terse wording; and the bundled files load."""

import json
from pathlib import Path

import pytest

from chatalign.errors import DataError
from chatalign.gatt.independent_set import heldout_pairs, load_heldout_instructions, round_robin_by_kind

ROOT = Path(__file__).resolve().parents[2]


def rows():
    kinds = ["lowercase"] * 3 + ["ends_question"] * 2 + ["one_sentence"]
    return [{"id": f"i{n}", "kind": k, "instruction": f"{k} full {n}", "terse": f"{k} terse {n}",
             "check": {"type": "lowercase"}} for n, k in enumerate(kinds)]


def write(tmp_path, instructions, dialogues):
    i, d = tmp_path / "gatt_instructions.jsonl", tmp_path / "gatt_dialogues.jsonl"
    i.write_text("".join(json.dumps(r) + "\n" for r in instructions))
    d.write_text("".join(json.dumps(r) + "\n" for r in dialogues))
    return i, d


def test_round_robin_over_kinds():
    assert [r["id"] for r in round_robin_by_kind(rows())] == ["i0", "i3", "i5", "i1", "i4", "i2"]


def test_pairs_long_dialogues_first_short_ones_cut(tmp_path):
    dialogues = [{"id": "short", "user_turns": ["a"] * 4}, {"id": "long", "user_turns": ["b"] * 9}]
    i, d = write(tmp_path, rows(), dialogues)
    ds, ins = heldout_pairs(i, d, n=4, n_long=1, short_turns=3, max_turn=8)
    assert [(x.id, len(x.user_turns)) for x in ds] == [("long", 8), ("short", 3), ("long#1", 3), ("short#1", 3)]
    assert [x.text for x in ins] == ["lowercase full 0", "ends_question full 3", "one_sentence full 5",
                                     "lowercase full 1"]
    assert ins[0].constraints == {"lowercase": {"type": "lowercase"}} and not ins[0].terse
    _, alt = heldout_pairs(i, d, n=2, n_long=None, short_turns=3, max_turn=8, wording="alternate")
    assert [x.terse for x in alt] == [False, True] and alt[1].text == "ends_question terse 3"


def test_bad_rows_name_the_line(tmp_path):
    bad = rows()
    bad[1] = {**bad[1], "check": "lowercase"}
    i, d = write(tmp_path, bad, [{"id": "x", "user_turns": ["a"]}])
    with pytest.raises(DataError, match=r"gatt_instructions.jsonl:2: check"):
        load_heldout_instructions(i)


def test_the_bundled_held_out_kinds_are_never_training_kinds():
    from chatalign.gatt.instructions import KINDS, InstructionSpace

    found = load_heldout_instructions(ROOT / "data" / "independent" / "gatt_instructions.jsonl")
    assert {r["kind"] for r in found} == {"lowercase", "ends_question", "quoted", "one_sentence", "new_language"}
    assert not {r["kind"] for r in found} & set(KINDS)
    languages = {r["check"]["code"] for r in found if r["check"]["type"] == "language"}
    space = InstructionSpace.from_yaml(ROOT / "data" / "quickstart" / "gatt_constraints.yaml")
    trained = {code for _, code in space.values["language"]}
    assert languages and not languages & trained
