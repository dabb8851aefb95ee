"""Seeded GAtt instruction synthesis: reproducible, half terse, 1-2 families, constraints match the text."""

from pathlib import Path

import pytest

from chatalign.errors import ConfigError
from chatalign.gatt.instructions import (
    FAMILIES,
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


def test_bundled_space_loads(space):
    assert "tennis" in space.hobbies and "Napoleon Bonaparte" in space.figures
    assert ("French", "fr") in space.languages
    assert space.length_values == (10, 15, 20)
    assert space.language_name("fr") == "French"


def test_same_seed_same_instructions_other_seed_others(space):
    a = synthesize_instructions(space, 40, seed=3)
    b = synthesize_instructions(space, 40, seed=3)
    c = synthesize_instructions(space, 40, seed=4)
    assert a == b
    assert a != c


def test_half_terse_and_one_or_two_families(space):
    ins = synthesize_instructions(space, 41, seed=0)
    assert sum(i.terse for i in ins) == round(41 * 0.5)
    assert all(1 <= len(i.constraints) <= 2 for i in ins)
    assert {len(i.constraints) for i in ins} == {1, 2}  # combinations do occur
    assert {f for i in ins for f in i.constraints} == set(FAMILIES)


def test_terse_fraction_and_family_bounds_are_honoured(space):
    ins = synthesize_instructions(space, 10, seed=1, families=("language", "public_figure"), min_families=2,
                                  max_families=2, terse_fraction=0.0)
    assert not any(i.terse for i in ins)
    assert all(set(i.constraints) == {"language", "public_figure"} for i in ins)


def test_constraint_values_are_machine_readable_and_appear_in_text(space):
    for inst in synthesize_instructions(space, 60, seed=2):
        for family, value in inst.constraints.items():
            if family == "language":
                assert value in {c for _, c in space.languages}
                assert space.language_name(value) in inst.text
            elif family == "answer_length":
                assert isinstance(value, int) and str(value) in inst.text
            elif family == "format":
                assert value == "uppercase" and "uppercase" in inst.text
            else:
                assert value in inst.text


def test_render_full_and_terse_wordings(space):
    c = {"public_figure": "Napoleon Bonaparte", "language": "fr"}
    assert render_instruction(space, c, terse=True) == "Language: French. Figure: Napoleon Bonaparte"
    assert render_instruction(space, c, terse=False) == "Always answer in French. Act as Napoleon Bonaparte."
    assert render_instruction(space, {"answer_length": 15, "format": "uppercase"}, terse=True) == \
        "Length: at most 15 words. Format: uppercase"


def test_instruction_round_trips_through_dict():
    inst = Instruction("Hobby: chess", {"hobby": "chess"}, terse=True)
    assert Instruction.from_dict(inst.to_dict()) == inst


def test_bad_arguments_and_files_are_refused(space, tmp_path):
    with pytest.raises(ConfigError, match="unknown instruction families"):
        synthesize_instructions(space, 3, seed=0, families=("cooking",))
    with pytest.raises(ConfigError, match="min_families"):
        synthesize_instructions(space, 3, seed=0, families=("hobby",), max_families=2)
    bad = tmp_path / "c.yaml"
    bad.write_text("hobbies: [chess]\n")
    with pytest.raises(ConfigError, match="not a GAtt constraints file"):
        InstructionSpace.from_yaml(bad)
