"""Checks across rows: an id seen twice is an error naming both lines (downstream, rows keyed by id would merge),
and a row over the per-row size limit is an error naming file:line, in every file type, for `chatalign data
validate` and for the loads the stages do."""

from __future__ import annotations

import json

import pytest

from chatalign.cli.main import main
from chatalign.data_schemas import BadDataError, load_records, validate_file
from chatalign.data_schemas.readers import MAX_ROW_BYTES

PROMPT = {"messages": [{"role": "user", "content": "q"}]}
CONV = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
PREF = {"prompt": [{"role": "user", "content": "q"}], "chosen": "a", "rejected": "b"}
REPEATS = "repeats the id of line {} (ids must be unique: whatever is keyed by id would merge the two rows)"


def write_jsonl(path, rows: list[dict]):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("kind, row", [("prompt", PROMPT), ("conversation", CONV), ("preference", PREF)])
def test_a_repeated_id_names_both_lines(tmp_path, kind, row):
    f = write_jsonl(tmp_path / "x.jsonl", [{**row, "id": i} for i in ["a", "b", "c", "b", "d", "a"]])
    assert [str(i) for i in validate_file(f, kind)] == [f"{f}:4: id: 'b' " + REPEATS.format(2),
                                                         f"{f}:6: id: 'a' " + REPEATS.format(1)]
    with pytest.raises(BadDataError, match=f"{f}:4: id: 'b' repeats"):
        load_records(f, kind)


def test_rows_without_ids_are_not_repeats_and_unique_ids_pass(tmp_path):
    f = write_jsonl(tmp_path / "x.jsonl", [PROMPT, PROMPT, {**PROMPT, "id": "a"}, {**PROMPT, "id": "b"}])
    assert validate_file(f, "prompt") == []
    assert len(load_records(f, "prompt").records) == 4


def test_a_repeat_in_another_file_of_a_folder_names_that_file(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{**PROMPT, "id": "p1"}])
    second = write_jsonl(tmp_path / "b.jsonl", [{**PROMPT, "id": "p2"}, {**PROMPT, "id": "p1"}])
    [issue] = validate_file(tmp_path, "prompt")
    assert str(issue).startswith(f"{second}:2: id: 'p1' repeats the id of {tmp_path / 'a.jsonl'}:line 1 ")


def test_a_skipped_repeat_goes_to_the_quarantine(tmp_path):
    f = write_jsonl(tmp_path / "x.jsonl", [{**PROMPT, "id": "a"}, {**PROMPT, "id": "a"}])
    result = load_records(f, "prompt", on_error="skip", quarantine=tmp_path / "q.jsonl")
    assert len(result.records) == 1 and result.skipped == 1
    assert json.loads((tmp_path / "q.jsonl").read_text())["source"] == f"{f}:2"


def big_conversation(n_bytes: int) -> dict:
    return {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "x" * n_bytes}]}


def test_a_row_over_the_size_limit_names_its_line(tmp_path):
    f = write_jsonl(tmp_path / "x.jsonl", [CONV, big_conversation(5 * 2**20), CONV])
    [issue] = validate_file(f, "conversation")
    assert str(issue) == (f"{f}:2: row is 5.0 MiB, over the 1 MiB limit per row (far beyond any model's "
                          "context: split or drop it)")


def test_a_row_just_under_the_limit_passes(tmp_path):
    under = big_conversation(MAX_ROW_BYTES - 200)
    f = write_jsonl(tmp_path / "x.jsonl", [under])
    assert len(json.dumps(under)) < MAX_ROW_BYTES and validate_file(f, "conversation") == []


@pytest.mark.parametrize("suffix", ["json", "parquet"])
def test_the_size_limit_holds_in_other_file_types(tmp_path, suffix):
    rows = [CONV, big_conversation(2 * 2**20)]
    f = tmp_path / f"x.{suffix}"
    if suffix == "json":
        f.write_text(json.dumps(rows))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), f)
    unit = "item" if suffix == "json" else "row"
    [issue] = validate_file(f, "conversation")
    assert str(issue).startswith(f"{f}:{unit} 2: row is 2.0 MiB, over the 1 MiB limit per row")


def test_data_validate_exits_2_on_a_repeated_id(tmp_path, capsys):
    f = write_jsonl(tmp_path / "p.jsonl", [{**PROMPT, "id": "a"}, {**PROMPT, "id": "a"}])
    assert main(["data", "validate", str(f), "--kind", "prompt"]) == 2
    assert capsys.readouterr().err.splitlines() == [f"{f}:2: id: 'a' " + REPEATS.format(1), f"{f}: 1 problem(s)"]
