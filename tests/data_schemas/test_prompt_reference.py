"""Prompt records with a `reference` answer read as conversations (format prompt_reference): the safety step
replays the benign look-alikes' answers straight from their prompt file."""

import json
from pathlib import Path

import pytest

from chatalign.data_schemas import BadDataError, load_records

AUTHORED = Path(__file__).resolve().parents[2] / "data" / "quickstart" / "authored"
ROW = {"id": "b-1", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}],
       "is_safety": False, "check": {"type": "no_refusal"}, "reference": "Hello!", "tags": ["benign_lookalike"]}


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_prompt_with_a_reference_is_the_prompt_then_the_reference_as_the_answer(tmp_path):
    result = load_records(write(tmp_path / "p.jsonl", [ROW]), "conversation")
    assert set(result.formats.values()) == {"prompt_reference"}
    record = result.records[0]
    assert [(m.role, m.content) for m in record.messages] == [
        ("system", "Be brief."), ("user", "Hi?"), ("assistant", "Hello!")]
    assert record.id == "b-1" and record.tags == ["benign_lookalike"]


def test_the_same_file_still_reads_as_prompts(tmp_path):
    prompt = load_records(write(tmp_path / "p.jsonl", [ROW]), "prompt").records[0]
    assert prompt.reference == "Hello!" and [m.role for m in prompt.messages] == ["system", "user"]


@pytest.mark.parametrize("change, field", [
    ({"reference": None}, "reference"),
    ({"reference": 3}, "reference"),
    ({"reference": "  "}, "reference"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}, "messages.1.role"),
    ({"messages": []}, "messages"),
    ({"refrence": "typo"}, "refrence"),
])
def test_a_bad_second_row_names_its_line_and_field(tmp_path, change, field):
    bad = {k: v for k, v in {**ROW, **change, "id": "b-2"}.items() if v is not None}
    path = write(tmp_path / "p.jsonl", [ROW, bad])
    with pytest.raises(BadDataError) as caught:
        load_records(path, "conversation")
    issue = caught.value.issues[0]
    assert (issue.file, issue.line) == (str(path), 2) and issue.field.startswith(field), str(issue)


def test_the_authored_benign_look_alikes_load_as_conversations_ending_in_their_reference():
    prompts = load_records(AUTHORED / "safety_benign_authored.jsonl", "prompt").records
    convs = load_records(AUTHORED / "safety_benign_authored.jsonl", "conversation").records
    assert len(convs) == len(prompts) == 120
    for prompt, conv in zip(prompts, convs):
        assert conv.messages[:-1] == prompt.messages and conv.messages[-1].content == prompt.reference
        assert conv.messages[-1].role == "assistant" and conv.tags == prompt.tags
