"""Reading files: every error path with its exact `file:line: field` prefix, skip + quarantine, limits."""

from __future__ import annotations

import json

import pytest

from chatalign.data_schemas import BadDataError, Issue, iter_rows, load_records, validate_file
from chatalign.errors import ConfigError, DataError

GOOD_PREF = {"prompt": [{"role": "user", "content": "q"}], "chosen": "a", "rejected": "b"}
GOOD_CONV = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}


def jsonl(path, *lines: str | bytes | dict):
    """Lines as given: dicts are dumped, str/bytes written verbatim (so broken lines can be made)."""
    out = b""
    for line in lines:
        if isinstance(line, dict):
            line = json.dumps(line)
        out += (line.encode() if isinstance(line, str) else line) + b"\n"
    path.write_bytes(out)
    return path


def issues_of(path, kind) -> list[str]:
    with pytest.raises(BadDataError) as e:
        load_records(path, kind)
    assert isinstance(e.value, DataError)
    return [str(i) for i in e.value.issues]


# ---- each error path, exact prefix ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "row", "prefix"),
    [
        ("preference", {"prompt": GOOD_PREF["prompt"], "chosen": "a"}, "rejected: missing required field"),
        ("preference", GOOD_PREF | {"chosen": ["a"]}, "chosen: Input should be a valid string"),
        ("preference", GOOD_PREF | {"chosen_safe": "maybe"}, "chosen_safe: Input should be a valid boolean"),
        (
            "preference",
            GOOD_PREF | {"prompt": [{"role": "user", "content": " "}]},
            "prompt.0.content: must not be empty",
        ),
        ("preference", GOOD_PREF | {"rejected": "a "}, "rejected: is identical to chosen"),
        (
            "preference",
            GOOD_PREF | {"strength": "much_better"},
            "strength: Input should be 'significantly_better'",
        ),
        ("preference", GOOD_PREF | {"margin": 1}, "margin: unknown field (a typo? a preference has: prompt,"),
        (
            "conversation",
            {"messages": [{"role": "user", "content": "q"}, {"role": "bot", "content": "a"}]},
            "messages.1.role: Input should be 'system', 'user' or 'assistant'",
        ),
        (
            "conversation",
            {"messages": GOOD_CONV["messages"] + [{"role": "user", "content": "more"}]},
            "messages.2.role: a conversation must end with an assistant message",
        ),
        (
            "conversation",
            {
                "messages": [
                    {"role": "user", "content": "q", "name": "x"},
                    {"role": "assistant", "content": "a"},
                ]
            },
            "messages.0.name: unknown field (a message has only role and content)",
        ),
        ("conversation", {"messages": "hello"}, "messages: Input should be a valid list"),
        ("prompt", {"messages": [{"role": "user"}]}, "messages.0.content: missing required field"),
    ],
)
def test_row_errors_name_file_line_and_field(tmp_path, kind, row, prefix):
    good = (
        GOOD_PREF
        if kind == "preference"
        else GOOD_CONV
        if kind == "conversation"
        else {"messages": [GOOD_CONV["messages"][0]]}
    )
    path = jsonl(tmp_path / "d.jsonl", good, row)
    (issue,) = issues_of(path, kind)
    assert issue.startswith(f"{path}:2: {prefix}"), issue


def test_unreadable_lines(tmp_path):
    path = jsonl(
        tmp_path / "d.jsonl",
        GOOD_PREF,
        b'{"prompt": [{"role": "us',
        b'{"chosen": "caf\xe9"}',
        b"[1, 2]",
        b"null",
        b'"text"',
        b"{'single': 1}",
    )
    assert issues_of(path, "preference") == [
        f"{path}:2: invalid JSON: Unterminated string starting at (column 22), cut short?",
        f"{path}:3: not UTF-8 text (byte 0xe9 at byte 16 of the line)",
        f"{path}:4: expected a JSON object, got list",
        f"{path}:5: expected a JSON object, got null",
        f"{path}:6: expected a JSON object, got str",
        f"{path}:7: invalid JSON: Expecting property name enclosed in double quotes (column 2)",
    ]


def test_truncated_last_line_without_newline(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(json.dumps(GOOD_PREF).encode() + b'\n{"prompt": [], "cho')
    (issue,) = issues_of(path, "preference")
    assert issue.startswith(f"{path}:2: invalid JSON:") and issue.endswith("cut short?")


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_jsonl(tmp_path, content):
    path = tmp_path / "d.jsonl"
    path.write_bytes(content)
    assert issues_of(path, "preference") == [f"{path}:1: empty file: no rows"]


def test_blank_lines_are_skipped_and_line_numbers_kept(tmp_path):
    path = jsonl(tmp_path / "d.jsonl", GOOD_PREF, "", "   ", GOOD_PREF | {"chosen": ""})
    assert issues_of(path, "preference") == [f"{path}:4: chosen: must not be empty (or only whitespace)"]


def test_byte_order_marks(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD_PREF).encode() + b"\r\n")
    assert len(load_records(path, "preference").records) == 1
    path.write_bytes(json.dumps(GOOD_PREF).encode("utf-16"))
    assert issues_of(path, "preference") == [f"{path}:1: file is UTF-16 text: convert it to UTF-8"]


def test_missing_path_and_unsupported_suffix(tmp_path):
    assert issues_of(tmp_path / "nope.jsonl", "preference") == [
        f"{tmp_path / 'nope.jsonl'}: no such file or folder"
    ]
    csv = tmp_path / "d.csv"
    csv.write_text("a,b\n")
    (issue,) = issues_of(csv, "preference")
    assert issue.startswith(f"{csv}: unsupported file type '.csv'")


# ---- JSON files -------------------------------------------------------------------------------------


def test_json_list_and_wrapped_list_count_items(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([GOOD_PREF, GOOD_PREF | {"strength": "meh"}], indent=2))
    (issue,) = issues_of(path, "preference")
    assert issue.startswith(f"{path}:item 2: strength: Input should be")
    path.write_text(json.dumps({"data": [GOOD_PREF, 3]}))
    assert issues_of(path, "preference") == [f"{path}:item 2: expected a JSON object, got int"]


@pytest.mark.parametrize(
    ("content", "issue"),
    [
        (b"", ":1: empty file: no rows"),
        (b"[]", ":1: empty file: no rows (the list is empty)"),
        (b'[\n {"a": 1},\n {"b": ', ":3: invalid JSON: Expecting value (column 8), cut short?"),
        (
            b'{"a": 1}\n{"a": 2}\n',
            ":2: invalid JSON: Extra data (column 1) (several JSON values: if this is JSON "
            "Lines, name it .jsonl)",
        ),
        (b'[\n{"a": "\xff"}]', ":2: not UTF-8 text (byte 0xff)"),
        (b'{"a": [], "b": []}', ":1: expected a list of objects, or an object with a single list field"),
        (b'"text"', ":1: expected a list of objects"),
    ],
)
def test_json_whole_file_errors(tmp_path, content, issue):
    path = tmp_path / "d.json"
    path.write_bytes(content)
    (got,) = issues_of(path, "preference")
    assert got.startswith(f"{path}{issue}"), got


def test_json_single_record_is_not_taken_for_a_wrapper(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps(GOOD_CONV))
    assert issues_of(path, "conversation") == [
        f"{path}:1: expected a list of records; this looks like a single record: put it in a list"
    ]


def test_unreadable_file_is_a_data_error(tmp_path, monkeypatch):
    path = tmp_path / "d.json"
    path.write_text("[]")

    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(type(path), "read_bytes", denied)
    assert issues_of(path, "conversation") == [f"{path}: cannot read: Permission denied"]


# ---- Parquet and datasets folders -------------------------------------------------------------------


def test_parquet_rows_and_nulls(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    rows = [GOOD_PREF | {"strength": None}, GOOD_PREF | {"strength": "wrong"}]
    pq.write_table(pa.Table.from_pylist(rows), path)
    (issue,) = issues_of(path, "preference")
    assert issue.startswith(f"{path}:row 2: strength: Input should be")
    path.write_bytes(b"PAR1 not really")
    (issue,) = issues_of(path, "preference")
    assert issue.startswith(f"{path}: not a readable Parquet file")
    pq.write_table(pa.Table.from_pylist([GOOD_PREF]).slice(0, 0), path)
    assert issues_of(path, "preference") == [f"{path}: empty file: no rows"]


def test_datasets_folder_and_split_choice(tmp_path):
    import datasets

    ds = datasets.Dataset.from_list([GOOD_CONV, {"messages": GOOD_CONV["messages"][:1]}])
    ds.save_to_disk(str(tmp_path / "one"))
    (issue,) = issues_of(tmp_path / "one", "conversation")
    assert issue.startswith(
        f"{tmp_path / 'one'}:row 2: messages.0.role: a conversation must end with an assistant"
    )
    datasets.DatasetDict({"train": ds, "test": ds.select([0])}).save_to_disk(str(tmp_path / "two"))
    (issue,) = issues_of(tmp_path / "two", "conversation")
    assert issue.startswith(f"{tmp_path / 'two'}: holds the splits train, test: point at one split's folder")
    assert len(load_records(tmp_path / "two" / "test", "conversation").records) == 1


def test_folder_of_files_reads_each_file_in_name_order(tmp_path):
    jsonl(tmp_path / "b.jsonl", GOOD_PREF | {"id": "b1"}, GOOD_PREF | {"chosen": 1})
    (tmp_path / "a.json").write_text(json.dumps([GOOD_PREF | {"id": "a1"}]))
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / ".hidden").mkdir()
    jsonl(tmp_path / ".hidden" / "x.jsonl", "junk")
    assert issues_of(tmp_path, "preference") == [
        f"{tmp_path / 'b.jsonl'}:2: chosen: Input should be a valid string"
    ]
    result = load_records(tmp_path, "preference", on_error="skip", quarantine=tmp_path / "q" / "bad.jsonl")
    assert [r.id for r in result.records] == ["a1", "b1"]
    empty = tmp_path / "empty"
    empty.mkdir()
    (issue,) = issues_of(empty, "preference")
    assert issue.startswith(f"{empty}: folder holds no .jsonl, .jsonl.gz, .json or .parquet files")


def test_iter_rows_numbers_from_one(tmp_path):
    path = jsonl(tmp_path / "d.jsonl", {"a": 1}, "", {"b": 2})
    assert [(r.line, r.unit, r.data) for r in iter_rows(path)] == [
        (1, "line", {"a": 1}),
        (3, "line", {"b": 2}),
    ]


# ---- raise limits, skip + quarantine ----------------------------------------------------------------


def test_raise_lists_max_errors_then_counts_the_rest(tmp_path):
    path = jsonl(tmp_path / "d.jsonl", *([GOOD_PREF | {"chosen": ""}] * 25), GOOD_PREF)
    with pytest.raises(BadDataError) as e:
        load_records(path, "preference", max_errors=3)
    lines = str(e.value).splitlines()
    assert lines == [f"{path}:{n}: chosen: must not be empty (or only whitespace)" for n in (1, 2, 3)] + [
        "... and 22 more"
    ]
    assert len(validate_file(path, "preference")) == 25
    with pytest.raises(BadDataError) as e:
        load_records(path, "preference")
    assert len(e.value.issues) == 20 and e.value.more == 5


def test_skip_writes_quarantine_with_raw_rows_and_problems(tmp_path):
    bad_row = GOOD_PREF | {"rejected": "a", "note": "x"}
    path = jsonl(
        tmp_path / "d.jsonl", GOOD_PREF, bad_row, b"{oops", b'{"chosen": "\xff"}', GOOD_PREF | {"id": "last"}
    )
    q = tmp_path / "out" / "quarantine.jsonl"
    result = load_records(path, "preference", on_error="skip", quarantine=q)
    assert [r.id for r in result.records] == [None, "last"]
    assert result.skipped == 3
    assert [str(i) for i in result.issues] == [
        f"{path}:2: rejected: is identical to chosen: a pair must compare two different answers",
        f"{path}:2: note: unknown field (a typo? a preference has: prompt, chosen, rejected, strength, chosen_safe, "
        "rejected_safe, category, id, source, annotation)",
        f"{path}:3: invalid JSON: Expecting property name enclosed in double quotes (column 2)",
        f"{path}:4: not UTF-8 text (byte 0xff at byte 13 of the line)",
    ]
    entries = [json.loads(line) for line in q.read_text(encoding="utf-8").splitlines()]
    assert entries == [
        {
            "source": f"{path}:2",
            "row": bad_row,
            "problems": [
                "rejected: is identical to chosen: a pair must compare two different answers",
                "note: unknown field (a typo? a preference has: prompt, chosen, rejected, strength, chosen_safe, "
                "rejected_safe, category, id, source, annotation)",
            ],
        },
        {
            "source": f"{path}:3",
            "raw": "{oops",
            "problems": ["invalid JSON: Expecting property name enclosed in double quotes (column 2)"],
        },
        {
            "source": f"{path}:4",
            "raw": '{"chosen": "\\xff"}',
            "problems": ["not UTF-8 text (byte 0xff at byte 13 of the line)"],
        },
    ]
    assert [p.name for p in q.parent.iterdir()] == ["quarantine.jsonl"]  # no temp file left behind


def test_skip_rules(tmp_path):
    path = jsonl(tmp_path / "d.jsonl", GOOD_PREF)
    with pytest.raises(ConfigError, match="needs a quarantine file"):
        load_records(path, "preference", on_error="skip")
    with pytest.raises(ConfigError, match="on_error='ignore'"):
        load_records(path, "preference", on_error="ignore")
    q = tmp_path / "q.jsonl"
    q.write_text("stale\n")
    assert load_records(path, "preference", on_error="skip", quarantine=q).skipped == 0
    assert q.read_text() == ""  # rewritten: a stale quarantine from an earlier run must not linger
    all_bad = jsonl(tmp_path / "bad.jsonl", b"{", b"[]")
    with pytest.raises(BadDataError, match="no valid rows: all 2 rows were bad"):
        load_records(all_bad, "preference", on_error="skip", quarantine=q)
    assert len(q.read_text().splitlines()) == 2


def test_whole_file_problem_after_bad_rows_lists_both(tmp_path):
    jsonl(tmp_path / "a.jsonl", GOOD_PREF | {"chosen": ""})
    (tmp_path / "b.jsonl").write_bytes(b"")
    with pytest.raises(BadDataError) as e:
        load_records(tmp_path, "preference")
    assert [str(i) for i in e.value.issues] == [
        f"{tmp_path / 'a.jsonl'}:1: chosen: must not be empty (or only whitespace)",
        f"{tmp_path / 'b.jsonl'}:1: empty file: no rows",
    ]


def test_issue_str_forms():
    assert str(Issue("f.jsonl", 3, "messages.2.role", "bad")) == "f.jsonl:3: messages.2.role: bad"
    assert str(Issue("f.json", 3, None, "bad", "item")) == "f.json:item 3: bad"
    assert str(Issue("f.parquet", 3, "chosen", "bad", "row")) == "f.parquet:row 3: chosen: bad"
    assert str(Issue("dir", None, None, "bad")) == "dir: bad"
