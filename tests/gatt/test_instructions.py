"""Seeded GAtt instruction synthesis: reproducible, half terse, 1-2 kinds without conflicts, every kind led
equally often, constraints match the text."""

from collections import Counter
from pathlib import Path
from random import Random

import pytest

from chatalign.errors import ConfigError
from chatalign.gatt.instructions import (
    CONFLICTS,
    KINDS,
    Instruction,
    InstructionSpace,
    render_instruction,
    synthesize_instructions,
)

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "data" / "quickstart" / "gatt_constraints.yaml"


@pytest.fixture(scope="module")
def space():
    return InstructionSpace.from_yaml(BUNDLED)


def test_bundled_space_has_every_kind_with_several_wordings(space):
    assert set(space.values) == set(KINDS)
    assert "tennis" in space.values["hobby"] and "Napoleon Bonaparte" in space.values["public_figure"]
    assert ("French", "fr") in space.values["language"]
    assert all(c not in {code for _, code in space.values["language"]} for c in ("nl", "sv", "en"))
    assert space.values["word_limit"] == (10, 15, 20)
    assert space.language_name("fr") == "French"
    assert all(len(w["full"]) >= 2 for k, w in space.wordings.items() if k not in ("hobby", "public_figure"))


def test_same_seed_same_instructions_other_seed_others(space):
    a = synthesize_instructions(space, 40, seed=3)
    assert a == synthesize_instructions(space, 40, seed=3)
    assert a != synthesize_instructions(space, 40, seed=4)


def test_half_terse_one_or_two_kinds_no_conflicts_balanced(space):
    ins = synthesize_instructions(space, 2 * len(KINDS), seed=0)
    assert sum(i.terse for i in ins) == len(KINDS)
    assert {len(i.constraints) for i in ins} == {1, 2}
    for i in ins:
        assert not any(frozenset((a, b)) in CONFLICTS for a in i.constraints for b in i.constraints if a != b)
    leads = Counter()
    for i in ins:
        leads.update(list(i.constraints))
    assert set(leads) == set(KINDS) and min(leads.values()) >= 2  # each kind leads once per cycle


def test_terse_fraction_and_kind_bounds_are_honoured(space):
    ins = synthesize_instructions(space, 10, seed=1, kinds=("language", "public_figure"), min_kinds=2,
                                  max_kinds=2, terse_fraction=0.0)
    assert not any(i.terse for i in ins)
    assert all(set(i.constraints) == {"language", "public_figure"} for i in ins)


def test_constraint_values_are_machine_readable_and_appear_in_text(space):
    for inst in synthesize_instructions(space, 80, seed=2):
        for kind, value in inst.constraints.items():
            if kind == "language":
                assert value in {c for _, c in space.values["language"]}
                assert space.language_name(value) in inst.text
            elif kind == "word_limit":
                assert isinstance(value, int) and str(value) in inst.text
            elif kind in ("uppercase", "bullets", "numbered_list", "json"):
                assert value is True
            elif kind != "emoji":  # the emoji is named by only one of its wordings
                assert value in inst.text


def test_render_full_and_terse_wordings():
    space = InstructionSpace.from_dict({"kinds": {
        "language": {"full": "Always answer in {value}.", "terse": "Language: {value}",
                     "values": [{"name": "French", "code": "fr"}]},
        "public_figure": {"full": ["Act as {value}."], "terse": ["Figure: {value}"], "values": ["Napoleon"]},
        "uppercase": {"full": "Always answer in uppercase.", "terse": ["Format: uppercase"]}}})
    c = {"public_figure": "Napoleon", "language": "fr"}
    assert render_instruction(space, c, True, Random(0)) == "Language: French. Figure: Napoleon"
    assert render_instruction(space, c, False, Random(0)) == "Always answer in French. Act as Napoleon."
    assert render_instruction(space, {"uppercase": True}, True, Random(0)) == "Format: uppercase"


def test_instruction_round_trips_through_dict():
    inst = Instruction("Hobby: chess", {"hobby": "chess"}, terse=True)
    assert Instruction.from_dict(inst.to_dict()) == inst


@pytest.mark.parametrize("data,message", [
    ({"hobbies": ["chess"]}, "not a GAtt constraints file"),
    ({"kinds": {"cooking": {"full": "x", "terse": "y"}}}, "kinds.cooking: unknown kind"),
    ({"kinds": {"hobby": {"full": "x", "values": ["chess"]}}}, "kinds.hobby.terse"),
    ({"kinds": {"hobby": {"full": "x", "terse": "y"}}}, "kinds.hobby.values"),
    ({"kinds": {"word_limit": {"full": "x", "terse": "y", "values": ["ten"]}}}, "positive integers"),
    ({"kinds": {"language": {"full": "x", "terse": "y", "values": ["French"]}}}, "name and a code"),
])
def test_bad_files_are_refused_by_key(data, message):
    with pytest.raises(ConfigError, match=message):
        InstructionSpace.from_dict(data)


def test_bad_arguments_are_refused(space):
    small = InstructionSpace.from_dict({"kinds": {"hobby": {"full": "x", "terse": "y", "values": ["chess"]}}})
    with pytest.raises(ConfigError, match="not in the constraints file"):
        synthesize_instructions(small, 3, seed=0, kinds=("language",))
    with pytest.raises(ConfigError, match="min_kinds"):
        synthesize_instructions(space, 3, seed=0, kinds=("hobby",), max_kinds=2)
