"""Alpaca-style instruction rows as conversations and prompts, and compressed JSON Lines (`.jsonl.gz`)."""

import gzip
import json

import pytest

from chatalign.data_schemas import BadDataError, load_records, validate_file

ROWS = [{"instruction": "Give three tips for staying healthy.", "input": "", "output": "Eat well, move, sleep."},
        {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour", "id": "t1"},
        {"instruction": "Answer briefly.", "input": "2+2?", "output": "4", "system": "You are terse."}]


def write(path, rows, compress=False):
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if compress:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_alpaca_rows_become_one_user_turn_and_the_answer(tmp_path):
    records = load_records(write(tmp_path / "a.jsonl", ROWS), "conversation").records
    assert [m.model_dump() for m in records[0].messages] == [
        {"role": "user", "content": "Give three tips for staying healthy."},
        {"role": "assistant", "content": "Eat well, move, sleep."}]
    assert records[1].messages[0].content == "Translate to French.\n\nGood morning" and records[1].id == "t1"
    assert [m.role for m in records[2].messages] == ["system", "user", "assistant"]
    prompts = load_records(tmp_path / "a.jsonl", "prompt").records
    assert [m.role for m in prompts[1].messages] == ["user"] and prompts[1].messages[0].content.endswith("morning")


def test_an_alpaca_problem_names_the_alpaca_field(tmp_path):
    bad = write(tmp_path / "bad.jsonl", [ROWS[0], {"instruction": "Sum.", "output": 5}, {"input": "x", "output": "y"}])
    issues = [str(i) for i in validate_file(bad, "conversation")]
    assert any("bad.jsonl:2" in i and "output" in i and "expected text" in i for i in issues), issues
    assert any("bad.jsonl:3" in i and "instruction" in i for i in issues), issues


def test_gzip_compressed_jsonl_reads_like_plain_and_a_broken_one_is_one_clear_error(tmp_path):
    plain = load_records(write(tmp_path / "a.jsonl", ROWS), "conversation").records
    packed = load_records(write(tmp_path / "a.jsonl.gz", ROWS, compress=True), "conversation").records
    assert [r.model_dump() for r in packed] == [r.model_dump() for r in plain]
    whole = (tmp_path / "a.jsonl.gz").read_bytes()
    (tmp_path / "cut.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(BadDataError, match="cut.jsonl.gz.*not a readable gzip file"):
        load_records(tmp_path / "cut.jsonl.gz", "conversation")
