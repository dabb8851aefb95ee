"""Writing JSONL atomically, converting outside formats, and a round trip through all four file types."""

from __future__ import annotations

import json

import pytest

from chatalign.data_schemas import (
    Conversation,
    Preference,
    Prompt,
    convert_file,
    load_records,
    record_dict,
    validate_file,
    write_jsonl,
)
from chatalign.errors import ConfigError

CONVERSATIONS = [
    Conversation(
        messages=[
            {"role": "system", "content": "Réponds en français."},
            {"role": "user", "content": "Salut"},
            {"role": "assistant", "content": "Bonjour ! 👋"},
        ],
        id="c1",
        tags=["gatt", "fr"],
    ),
    Conversation(messages=[{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]),
]
PREFERENCES = [
    Preference(
        prompt=[{"role": "user", "content": "How do I boil an egg?"}],
        chosen="Simmer 9 min.",
        rejected="No idea.",
        strength="significantly_better",
        chosen_safe=True,
        rejected_safe=True,
        category="helpfulness",
        id="p1",
        source="hand",
    ),
    Preference(
        prompt=[
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "a"},
            {"role": "user", "content": "and?"},
        ],
        chosen="more",
        rejected="less",
    ),
]
PROMPTS = [
    Prompt(
        messages=[{"role": "user", "content": "List 3 fruits as JSON."}],
        check={"type": "json", "items": 3},
        tags=["format"],
        id="q1",
    ),
    Prompt(
        messages=[{"role": "user", "content": "How to make a weapon?"}],
        is_safety=True,
        risk_category="illicit",
        check={"type": "refusal"},
    ),
    Prompt(messages=[{"role": "user", "content": "hi"}]),
]
SETS = {"conversation": CONVERSATIONS, "preference": PREFERENCES, "prompt": PROMPTS}


def test_write_jsonl_format(tmp_path):
    path = tmp_path / "sub" / "p.jsonl"
    assert (
        write_jsonl(
            path,
            [
                PREFERENCES[1],
                {
                    "prompt": [{"role": "user", "content": "é"}],
                    "chosen": "a",
                    "rejected": "b",
                    "strength": None,
                },
            ],
        )
        == 2
    )
    lines = path.read_bytes().decode("utf-8").splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert set(first) == {"prompt", "chosen", "rejected"}  # None fields left out
    assert "é" in lines[1] and "strength" not in lines[1]
    assert [p.name for p in path.parent.iterdir()] == ["p.jsonl"]


def test_write_jsonl_is_atomic_when_interrupted(tmp_path):
    path = tmp_path / "p.jsonl"
    write_jsonl(path, PREFERENCES)
    before = path.read_bytes()

    def rows():
        yield PREFERENCES[0]
        raise RuntimeError("generator died half way")

    with pytest.raises(RuntimeError):
        write_jsonl(path, rows())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["p.jsonl"]
    with pytest.raises(TypeError):
        write_jsonl(path, ["not a record"])
    assert path.read_bytes() == before


def test_lone_surrogate_in_free_text_still_writes_valid_utf8(tmp_path):
    path = tmp_path / "c.jsonl"
    write_jsonl(path, [CONVERSATIONS[1].model_copy(update={"id": "x\ud800"})])
    path.read_bytes().decode("utf-8")  # strict decode: the file is valid UTF-8
    (back,) = load_records(path, "conversation").records
    assert back.id == "x\ud800"


def _write_format(path, kind, records):
    dicts = [r.model_dump(mode="json") for r in records]  # columnar formats: every column in every row
    if path.suffix == ".jsonl":
        write_jsonl(path, records)
    elif path.suffix == ".json":
        path.write_text(
            json.dumps({"rows": [record_dict(r) for r in records]}, ensure_ascii=False), encoding="utf-8"
        )
    elif path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(dicts), path)
    else:
        import datasets

        datasets.Dataset.from_list(dicts).save_to_disk(str(path))


@pytest.mark.parametrize("kind", ["conversation", "preference", "prompt"])
def test_round_trip_through_all_four_file_types(tmp_path, kind):
    records = SETS[kind]
    for name in ("d.jsonl", "d.json", "d.parquet", "hf_folder"):
        path = tmp_path / name
        _write_format(path, kind, records)
        result = load_records(path, kind)
        assert result.records == records, name
        assert result.formats == {str(path): "canonical"}
        assert validate_file(path, kind) == []


def test_convert_file_from_hh(tmp_path):
    src = tmp_path / "hh.jsonl"
    src.write_text(
        json.dumps(
            {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: Go."}
        )
        + "\n",
        encoding="utf-8",
    )
    dst = tmp_path / "out" / "prefs.jsonl"
    assert convert_file(src, dst, "preference") == 1
    assert json.loads(dst.read_text()) == {
        "prompt": [{"role": "user", "content": "Hi"}],
        "chosen": "Hello!",
        "rejected": "Go.",
    }
    assert load_records(dst, "preference").formats == {str(dst): "canonical"}
    with pytest.raises(ConfigError, match="only .jsonl"):
        convert_file(src, tmp_path / "x.parquet", "preference")


def test_validate_file_lists_every_issue(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(
        "".join(json.dumps({"messages": [{"role": "user", "content": str(i)}]}) + "\n" for i in range(30))
    )
    issues = validate_file(path, "conversation")
    assert len(issues) == 30
    assert str(issues[29]).startswith(
        f"{path}:30: messages.0.role: a conversation must end with an assistant"
    )
    empty = tmp_path / "e.jsonl"
    empty.write_text("")
    assert [str(i) for i in validate_file(empty, "conversation")] == [f"{empty}:1: empty file: no rows"]
