"""Targeted bad rows, placed at a random line among good ones, in every kind and outside format: the load
fails with exactly one issue `file:line: field: problem` naming that line and the broken field (or goes to
the quarantine file with on_error=skip, the others kept). tests/data_schemas/test_schema_properties.py
covers arbitrary junk (never an exception other than DataError); this file checks the location is right.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatalign.data_schemas import load_records
from chatalign.data_schemas.issues import BadDataError

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
U, A, S = {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}, {"role": "system", "content": "s"}

# kind -> format -> a good row of that format
GOOD = {
    "conversation": {
        "canonical": {"messages": [S, U, A], "id": "c"},
        "sharegpt": {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
        "hh": {"text": "\n\nHuman: q\n\nAssistant: a"},
        "prompt_reference": {"messages": [S, U], "reference": "a", "is_safety": False, "id": "p"},
    },
    "preference": {
        "canonical": {"prompt": [U], "chosen": "a", "rejected": "b", "strength": "better"},
        "trl": {"chosen": [U, A], "rejected": [U, {"role": "assistant", "content": "b"}]},
        "hh": {"chosen": "\n\nHuman: q\n\nAssistant: a", "rejected": "\n\nHuman: q\n\nAssistant: b"},
        "ultrafeedback": {"prompt": "q", "chosen": "a", "rejected": "b", "score_chosen": 5, "score_rejected": 2},
    },
    "prompt": {"canonical": {"messages": [U], "is_safety": False}},
}


def _set(row: dict, path: tuple, value) -> dict:
    row = json.loads(json.dumps(row))
    target = row
    for p in path[:-1]:
        target = target[p]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return row


DELETE = object()
# (kind, format) -> list of (name, raw path changed, new value, the field the issue must name)
MUTATIONS = {
    ("conversation", "canonical"): [
        ("missing field", ("messages",), DELETE, "messages"),
        ("extra field", ("colour",), "blue", "colour"),
        ("wrong type", ("messages",), "hello", "messages"),
        ("wrong type in message", ("messages", 1, "content"), 7, "messages.1.content"),
        ("empty string", ("messages", 2, "content"), "", "messages.2.content"),
        ("whitespace only", ("messages", 1, "content"), "  \n", "messages.1.content"),
        ("unknown role", ("messages", 1, "role"), "robot", "messages.1.role"),
        ("ends with user", ("messages",), [S, U], "messages.1.role"),
        ("two users in a row", ("messages",), [U, U, A], "messages.1.role"),
        ("system not first", ("messages",), [U, S, A], "messages.1.role"),
        ("extra field in message", ("messages", 1, "name"), "x", "messages.1.name"),
        ("wrong id type", ("id",), {"a": 1}, "id"),
    ],
    ("conversation", "sharegpt"): [
        ("unknown speaker", ("conversations", 0, "from"), "robot", "conversations.0.from"),
        ("ends with human", ("conversations",), [{"from": "human", "value": "q"}], "conversations.0.from"),
        ("empty value", ("conversations", 1, "value"), "", "conversations.1.value"),
    ],
    ("conversation", "hh"): [
        ("ends with human", ("text",), "\n\nHuman: q", "text"),
        ("no turns", ("text",), "just prose", "text"),
        ("wrong type", ("text",), 3, "text"),
    ],
    ("conversation", "prompt_reference"): [
        ("missing reference", ("reference",), DELETE, "reference"),
        ("reference not text", ("reference",), ["a"], "reference"),
        ("empty reference", ("reference",), " ", "reference"),
        ("prompt ends with assistant", ("messages",), [U, A], "messages.1.role"),
        ("empty prompt content", ("messages", 1, "content"), "", "messages.1.content"),
        ("unknown role", ("messages", 1, "role"), "robot", "messages.1.role"),
    ],
    ("preference", "canonical"): [
        ("missing chosen", ("chosen",), DELETE, "chosen"),
        ("identical answers", ("rejected",), "a", "rejected"),
        ("empty chosen", ("chosen",), "", "chosen"),
        ("unknown strength", ("strength",), "much_better", "strength"),
        ("wrong type", ("chosen",), ["a"], "chosen"),
        ("prompt ends with assistant", ("prompt",), [U, A], "prompt.1.role"),
        ("extra field", ("score",), 3, "score"),
        ("unknown role in prompt", ("prompt", 0, "role"), "narrator", "prompt.0.role"),
        ("bool as a list", ("chosen_safe",), [True], "chosen_safe"),
    ],
    ("preference", "trl"): [
        ("identical answers", ("rejected",), [U, A], "rejected"),
        ("different prompts", ("rejected",), [{"role": "user", "content": "other"}, A], "rejected"),
        ("no answer", ("chosen",), [U], "chosen"),
    ],
    ("preference", "hh"): [
        ("identical answers", ("rejected",), "\n\nHuman: q\n\nAssistant: a", "rejected"),
        ("ends with human", ("chosen",), "\n\nHuman: q", "chosen"),
    ],
    ("preference", "ultrafeedback"): [
        ("score as text", ("score_chosen",), "high", "score_chosen"),
        ("identical answers", ("rejected",), "a", "rejected"),
    ],
    ("prompt", "canonical"): [
        ("ends with assistant", ("messages",), [U, A], "messages.1.role"),
        ("missing messages", ("messages",), DELETE, "messages"),
        ("wrong type", ("is_safety",), "maybe", "is_safety"),
        ("empty content", ("messages", 0, "content"), "", "messages.0.content"),
    ],
}
CASES = [(kind, fmt, m) for (kind, fmt), ms in MUTATIONS.items() for m in ms]
# whole-line faults: the issue names the line, no field
LINE_FAULTS = ["truncated", "latin-1", "not an object", "nested too deeply"]


def _numbered(row: dict, i: int) -> dict:
    """The row with an id of its own (ids must not repeat within a file)."""
    return {**row, "id": f"{row['id']}{i}"} if "id" in row else row


def _write(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"\n".join(lines) + b"\n")


def _check(path: Path, kind: str, fmt: str, line: int, n: int, field: str | None) -> None:
    try:
        load_records(path, kind, fmt=fmt)
    except BadDataError as exc:
        assert len(exc.issues) >= 1 and {i.line for i in exc.issues} == {line}, str(exc)
        issue = exc.issues[0]
        assert issue.file == str(path) and issue.problem.strip(), issue
        if field:  # the field named, or a more precise place below it ("text (turn 1)", "messages.0.role")
            assert issue.field and (issue.field == field or issue.field.startswith((f"{field}.", f"{field} ("))), \
                (str(issue), field)
        assert str(issue) == f"{path}:{line}: {issue.field + ': ' if issue.field else ''}{issue.problem}"
    else:
        raise AssertionError(f"bad row at line {line} was accepted ({kind}/{fmt}/{field})")
    q = path.with_name("quarantine.jsonl")
    if n == 1:  # nothing left to train on: still an error, and the row is still in the quarantine file
        try:
            load_records(path, kind, fmt=fmt, on_error="skip", quarantine=q)
            raise AssertionError("a file whose only row is bad was accepted")
        except BadDataError as exc:
            assert "no valid rows" in str(exc)
    else:
        result = load_records(path, kind, fmt=fmt, on_error="skip", quarantine=q)
        assert result.skipped == 1 and len(result.records) == n - 1
    entries = [json.loads(x) for x in q.read_text().splitlines()]
    assert len(entries) == 1 and entries[0]["source"] == f"{path}:{line}"


@SETTINGS
@given(case=st.sampled_from(CASES), n=st.integers(1, 6), data=st.data())
def test_a_bad_field_is_reported_at_its_line_and_field(case, n, data):
    kind, fmt, (_name, path_in_row, value, field) = case
    where = data.draw(st.integers(0, n - 1))
    good = GOOD[kind][fmt]
    if fmt == "trl" and path_in_row == ("chosen",) and value == [U]:
        value = [U]  # a chosen list without an answer
    rows = [_numbered(good, i) for i in range(n)]
    rows[where] = _set(rows[where], path_in_row, value)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "data.jsonl"
        _write(p, [json.dumps(r).encode() for r in rows])
        _check(p, kind, fmt, where + 1, n, field)


@SETTINGS
@given(kind=st.sampled_from(sorted(GOOD)), fault=st.sampled_from(LINE_FAULTS), n=st.integers(1, 6),
       data=st.data())
def test_a_broken_line_is_reported_at_its_line(kind, fault, n, data):
    where = data.draw(st.integers(0, n - 1))
    good = json.dumps(GOOD[kind]["canonical"]).encode()
    lines = [json.dumps(_numbered(GOOD[kind]["canonical"], i)).encode() for i in range(n)]
    bad = {"truncated": good[: data.draw(st.integers(1, len(good) - 1))],
           "latin-1": good.replace(b'"q"', '"caf\u00e9"'.encode("latin-1")),
           "not an object": b"[1, 2]",
           "nested too deeply": b'{"messages": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"}[fault]
    lines[where] = bad
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "data.jsonl"
        _write(p, lines)
        _check(p, kind, "canonical", where + 1, n, None)


def test_huge_rows_fail_cleanly(tmp_path):
    """A 5 MB row is over the per-row limit: a clear error at its line, and with skip it is quarantined."""
    row = {"messages": [U, {"role": "assistant", "content": "x" * 5_000_000}]}
    p = tmp_path / "huge.jsonl"
    p.write_text(json.dumps({"messages": [U, A]}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(BadDataError, match=f"^{p}:2: row is 4.8 MiB, over the 1 MiB limit per row"):
        load_records(p, "conversation")
    kept = load_records(p, "conversation", on_error="skip", quarantine=tmp_path / "q.jsonl")
    assert len(kept.records) == 1 and json.loads((tmp_path / "q.jsonl").read_text())["row"] == row
