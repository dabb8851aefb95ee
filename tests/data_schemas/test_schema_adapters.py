"""Outside formats -> canonical records, on hand-written rows; errors name the raw row's fields."""

from __future__ import annotations

import json

import pytest

from chatalign.data_schemas import (
    SCORE_GAP_THRESHOLDS,
    BadDataError,
    Strength,
    detect_format,
    load_records,
    parse_transcript,
    strength_from_gap,
)
from chatalign.data_schemas.adapted import AdaptError
from chatalign.errors import ConfigError, DataError


def U(text):
    return {"role": "user", "content": text}


def A(text):
    return {"role": "assistant", "content": text}


def S(text):
    return {"role": "system", "content": text}


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def load(tmp_path, rows, kind, **kw):
    return load_records(write_rows(tmp_path / "d.jsonl", rows), kind, **kw)


def one_issue(tmp_path, rows, kind, **kw) -> str:
    with pytest.raises(BadDataError) as e:
        load(tmp_path, rows, kind, **kw)
    assert isinstance(e.value, DataError)
    assert len(e.value.issues) == 1, str(e.value)
    return str(e.value.issues[0])


# ---- detection --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "row", "fmt"),
    [
        ("conversation", {"messages": [], "id": "x", "tags": []}, "canonical"),
        ("conversation", {"messages": [], "prompt_id": "x"}, "trl"),
        ("conversation", {"conversations": []}, "sharegpt"),
        ("conversation", {"text": "\n\nHuman: a"}, "hh"),
        ("conversation", {"chosen": "\n\nHuman: a"}, "hh"),
        ("conversation", {"mesages": []}, "canonical"),
        ("preference", {"prompt": [], "chosen": "a", "rejected": "b"}, "canonical"),
        ("preference", {"prompt": [], "chosen": "a", "rejected": "b", "strenght": "x"}, "canonical"),
        ("preference", {"chosen": [], "rejected": []}, "trl"),
        ("preference", {"prompt": "q", "chosen": "a", "rejected": "b"}, "trl"),
        ("preference", {"prompt": [], "chosen": [], "rejected": []}, "trl"),
        ("preference", {"chosen": "\n\nHuman: a", "rejected": "\n\nHuman: b"}, "hh"),
        ("preference", {"prompt": "q", "chosen": "a", "rejected": "b", "score_chosen": 1}, "ultrafeedback"),
        ("prompt", {"messages": [], "is_safety": True}, "canonical"),
        ("prompt", {"prompt": "q"}, "trl"),
        ("prompt", {"messages": [], "source": "x"}, "trl"),
    ],
)
def test_detect_format(kind, row, fmt):
    assert detect_format(kind, row) == fmt


def test_unknown_kind_or_format_is_a_config_error(tmp_path):
    rows = [{"messages": [U("a"), A("b")]}]
    with pytest.raises(ConfigError, match="unknown record kind 'dialogue'"):
        load(tmp_path, rows, "dialogue")
    with pytest.raises(ConfigError, match="unknown format 'ultrafeedback' for conversation"):
        load(tmp_path, rows, "conversation", fmt="ultrafeedback")


def test_forced_format_overrides_detection(tmp_path):
    # Canonical-looking, but forced to trl: the unknown column is ignored and reported, not an error.
    rows = [{"messages": [U("a"), A("b")], "lang": "en"}]
    r = load(tmp_path, rows, "conversation", fmt="trl")
    assert r.formats == {str(tmp_path / "d.jsonl"): "trl"}
    assert r.ignored_fields == {str(tmp_path / "d.jsonl"): ["lang"]}
    assert "d.jsonl:1: lang: unknown field" in one_issue(tmp_path, rows, "conversation", fmt="canonical")


# ---- conversations ----------------------------------------------------------------------------------


def test_trl_messages_drop_extra_columns_and_message_keys(tmp_path):
    rows = [
        {
            "prompt": "a",
            "prompt_id": "7",
            "id": "c1",
            "messages": [U("a"), {"role": "assistant", "content": "b", "name": "bot"}],
        }
    ]
    r = load(tmp_path, rows, "conversation")
    (c,) = r.records
    assert c.id == "c1" and [m.content for m in c.messages] == ["a", "b"]
    assert r.ignored_fields[str(tmp_path / "d.jsonl")] == ["messages[].name", "prompt", "prompt_id"]


def test_sharegpt_conversations(tmp_path):
    rows = [
        {
            "id": "s1",
            "conversations": [
                {"from": "system", "value": "sys"},
                {"from": "human", "value": "q"},
                {"from": "gpt", "value": "a", "weight": 1},
            ],
        }
    ]
    r = load(tmp_path, rows, "conversation")
    (c,) = r.records
    assert [(m.role, m.content) for m in c.messages] == [("system", "sys"), ("user", "q"), ("assistant", "a")]
    assert c.id == "s1"
    bad_speaker = [{"conversations": [{"from": "human", "value": "q"}, {"from": "bard", "value": "a"}]}]
    assert one_issue(tmp_path, bad_speaker, "conversation").startswith(
        f"{tmp_path / 'd.jsonl'}:1: conversations.1.from: unknown speaker 'bard'"
    )
    empty_value = [{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": " "}]}]
    assert one_issue(tmp_path, empty_value, "conversation").startswith(
        f"{tmp_path / 'd.jsonl'}:1: conversations.1.value: must not be empty"
    )
    ends_with_human = [{"conversations": [{"from": "human", "value": "q"}]}]
    assert one_issue(tmp_path, ends_with_human, "conversation").startswith(
        f"{tmp_path / 'd.jsonl'}:1: conversations.0.from: a conversation must end with an assistant"
    )


def test_hh_single_transcript_as_conversation(tmp_path):
    rows = [{"text": "\n\nHuman: What is 2+2?\n\nAssistant: 4.\n\nHuman: And 3+3?\n\nAssistant: 6."}]
    (c,) = load(tmp_path, rows, "conversation").records
    assert [(m.role, m.content) for m in c.messages] == [
        ("user", "What is 2+2?"),
        ("assistant", "4."),
        ("user", "And 3+3?"),
        ("assistant", "6."),
    ]
    bad = [{"text": "\n\nHuman: a\n\nAssistant: b\n\nHuman: c"}]
    assert one_issue(tmp_path, bad, "conversation").startswith(
        f"{tmp_path / 'd.jsonl'}:1: text (turn 3): a conversation must end with an assistant message"
    )


# ---- HH preferences ---------------------------------------------------------------------------------

HH_CHOSEN = (
    "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How do I boil an egg?\n\nAssistant: Simmer it 9 minutes."
)
HH_REJECTED = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How do I boil an egg?\n\nAssistant: No idea."


def test_parse_transcript():
    assert parse_transcript("\n\nHuman: a b \n\nAssistant:  c\nd", "chosen") == [
        ("user", "a b"),
        ("assistant", "c\nd"),
    ]
    assert parse_transcript("Human: x\n\nAssistant: y", "chosen") == [("user", "x"), ("assistant", "y")]
    with pytest.raises(AdaptError, match="no '.*Human:'") as e:
        parse_transcript("just text", "rejected")
    assert e.value.field == "rejected"
    with pytest.raises(AdaptError, match="text before the first"):
        parse_transcript("hello\n\nHuman: a\n\nAssistant: b", "chosen")
    with pytest.raises(AdaptError, match="must start with a 'Human:'"):
        parse_transcript("\n\nAssistant: b", "chosen")
    with pytest.raises(AdaptError, match="got int"):
        parse_transcript(5, "chosen")


def test_hh_preference(tmp_path):
    (p,) = load(tmp_path, [{"chosen": HH_CHOSEN, "rejected": HH_REJECTED}], "preference").records
    assert [(m.role, m.content) for m in p.prompt] == [
        ("user", "Hi"),
        ("assistant", "Hello!"),
        ("user", "How do I boil an egg?"),
    ]
    assert (p.chosen, p.rejected, p.strength) == ("Simmer it 9 minutes.", "No idea.", None)


@pytest.mark.parametrize(
    ("row", "prefix"),
    [
        ({"chosen": "no labels here", "rejected": HH_REJECTED}, "chosen: not a Human/Assistant transcript"),
        (
            {
                "chosen": HH_CHOSEN,
                "rejected": "\n\nHuman: Hi\n\nAssistant: Yo\n\nHuman: How do I boil an egg?"
                "\n\nAssistant: No idea.",
            },
            "rejected: the turns before",
        ),
        ({"chosen": HH_CHOSEN, "rejected": HH_REJECTED + "\n\nHuman: ok?"}, "rejected: transcript must end"),
        (
            {"chosen": HH_CHOSEN.replace("Simmer it 9 minutes.", ""), "rejected": HH_REJECTED},
            "chosen (turn 4): must not be empty",
        ),
        ({"chosen": HH_CHOSEN}, "rejected: missing required field"),
        (
            {
                "chosen": "\n\nHuman: a\n\nHuman: b\n\nAssistant: c",
                "rejected": "\n\nHuman: a\n\nHuman: b\n\nAssistant: d",
            },
            "chosen (turn 2): expected assistant, got user",
        ),
    ],
)
def test_hh_preference_errors_name_the_transcript(tmp_path, row, prefix):
    assert one_issue(tmp_path, [row], "preference", fmt="hh").startswith(
        f"{tmp_path / 'd.jsonl'}:1: {prefix}"
    )


# ---- TRL preferences --------------------------------------------------------------------------------


def test_trl_implicit_prompt_is_the_common_prefix(tmp_path):
    rows = [{"chosen": [S("s"), U("q"), A("good")], "rejected": [S("s"), U("q"), A("bad")], "score": 3}]
    r = load(tmp_path, rows, "preference")
    (p,) = r.records
    assert [m.content for m in p.prompt] == ["s", "q"] and (p.chosen, p.rejected) == ("good", "bad")
    assert r.ignored_fields[str(tmp_path / "d.jsonl")] == ["score"]


def test_trl_explicit_prompt_forms(tmp_path):
    rows = [
        {"prompt": "q1", "chosen": "a", "rejected": "b"},
        {"prompt": [U("q2")], "chosen": [A("a")], "rejected": [A("b")], "strength": "better"},
        # ultrafeedback_binarized style: each answer list repeats the prompt before the answer
        {"prompt": "q3", "chosen": [U("q3"), A("a")], "rejected": [U("q3"), A("b")]},
    ]
    ps = load(tmp_path, rows, "preference", fmt="trl").records
    assert [[m.content for m in p.prompt] for p in ps] == [["q1"], ["q2"], ["q3"]]
    assert all((p.chosen, p.rejected) == ("a", "b") for p in ps)
    assert ps[1].strength is Strength.better


@pytest.mark.parametrize(
    ("row", "prefix"),
    [
        (
            {"chosen": [U("q"), A("a")], "rejected": [U("other"), A("b")]},
            "rejected: the turns before the last",
        ),
        (
            {"chosen": [U("q"), A("a")], "rejected": [U("q"), U("b")]},
            "rejected.1.role: the last message must be",
        ),
        ({"chosen": [], "rejected": [U("q"), A("b")]}, "chosen: empty message list"),
        (
            {"prompt": "q", "chosen": [U("x"), A("a")], "rejected": "b"},
            "chosen: the messages before the answer differ",
        ),
        (
            {"chosen": [U("q"), A("a")], "rejected": [U("q"), A(" a ")]},
            "rejected.1.content: is identical to chosen",
        ),
        (
            {"chosen": [U("q"), A("a")], "rejected": [U("q"), A(7)]},
            "rejected.1.content: Input should be a valid string",
        ),
        ({"chosen": [U(""), A("a")], "rejected": [U(""), A("b")]}, "chosen.0.content: must not be empty"),
        ({"prompt": "  ", "chosen": "a", "rejected": "b"}, "prompt: must not be empty"),
        ({"chosen": [U("q"), A("a")], "rejected": [U("q"), "b"]}, "rejected.1: expected a message object"),
    ],
)
def test_trl_preference_errors(tmp_path, row, prefix):
    assert one_issue(tmp_path, [row], "preference", fmt="trl").startswith(
        f"{tmp_path / 'd.jsonl'}:1: {prefix}"
    )


# ---- UltraFeedback ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gap", "strength"),
    [
        (5, "significantly_better"),
        (3, "significantly_better"),
        (2.99, "better"),
        (2, "better"),
        (1.5, "slightly_better"),
        (1, "slightly_better"),
        (0.99, "negligibly_better"),
        (0.01, "negligibly_better"),
        (0, "unsure"),
    ],
)
def test_strength_from_gap_thresholds(gap, strength):
    assert strength_from_gap(gap).value == strength


def test_thresholds_are_documented_and_descending():
    values = list(SCORE_GAP_THRESHOLDS.values())
    assert values == sorted(values, reverse=True) == [3.0, 2.0, 1.0, 0.0]
    with pytest.raises(ValueError):
        strength_from_gap(-0.5)


def test_ultrafeedback_pairs(tmp_path):
    rows = [
        {
            "prompt": "q",
            "chosen": "a",
            "rejected": "b",
            "score_chosen": 8.5,
            "score_rejected": 6.5,
            "prompt_id": "p",
        },
        {
            "prompt": "q",
            "chosen": [U("q"), A("a")],
            "rejected": [U("q"), A("b")],
            "score_chosen": 7,
            "score_rejected": 7,
        },
        {
            "prompt": "q",
            "chosen": "a",
            "rejected": "b",
            "score_chosen": 9,
            "score_rejected": 1,
            "strength": "slightly_better",
        },
    ]
    r = load(tmp_path, rows, "preference")
    assert [p.strength.value for p in r.records] == ["better", "unsure", "slightly_better"]
    assert r.formats[str(tmp_path / "d.jsonl")] == "ultrafeedback"
    assert r.ignored_fields[str(tmp_path / "d.jsonl")] == ["prompt_id"]


@pytest.mark.parametrize(
    ("change", "prefix"),
    [
        ({"score_chosen": 4, "score_rejected": 6}, "score_chosen: score_chosen < score_rejected (4 < 6)"),
        ({"score_chosen": "high"}, "score_chosen: must be a finite number"),
        ({"score_rejected": True}, "score_rejected: must be a finite number"),
        ({"score_rejected": None}, "score_rejected: must be a finite number"),
    ],
)
def test_ultrafeedback_errors(tmp_path, change, prefix):
    row = {"prompt": "q", "chosen": "a", "rejected": "b", "score_chosen": 8, "score_rejected": 6} | change
    assert one_issue(tmp_path, [row], "preference").startswith(f"{tmp_path / 'd.jsonl'}:1: {prefix}")


def test_ultrafeedback_needs_both_scores(tmp_path):
    row = {"prompt": "q", "chosen": "a", "rejected": "b", "score_chosen": 8}
    assert one_issue(tmp_path, [row], "preference").startswith(
        f"{tmp_path / 'd.jsonl'}:1: score_rejected: missing required field"
    )


# ---- prompts ----------------------------------------------------------------------------------------


def test_prompt_formats(tmp_path):
    rows = [
        {"prompt": "How do I pick a lock?", "is_safety": True, "risk_category": "illicit", "split": "test"}
    ]
    r = load(tmp_path, rows, "prompt")
    (p,) = r.records
    assert [(m.role, m.content) for m in p.messages] == [("user", "How do I pick a lock?")]
    assert p.is_safety and p.risk_category == "illicit"
    assert r.ignored_fields[str(tmp_path / "d.jsonl")] == ["split"]
    rows = [{"messages": [S("s"), U("q")], "check": {"type": "json"}, "tags": ["fmt"], "id": "p1"}]
    (p,) = load(tmp_path, rows, "prompt").records
    assert p.check == {"type": "json"} and p.tags == ["fmt"]
    assert one_issue(tmp_path, [{"prompt": [U("q"), A("a")]}], "prompt").startswith(
        f"{tmp_path / 'd.jsonl'}:1: prompt.1.role: a prompt must end with a user message"
    )


def test_sharegpt_speaker_that_is_not_a_string_is_an_issue(tmp_path):
    """Found by hypothesis in CI: a dict as `from` raised TypeError (unhashable) instead of an Issue."""
    import json

    import pytest

    from chatalign.data_schemas import load_records
    from chatalign.errors import DataError

    p = tmp_path / "c.jsonl"
    p.write_text(json.dumps({"conversations": [{"from": {"role": "system"}, "value": "x"}]}) + "\n")
    with pytest.raises(DataError, match=r"c.jsonl:1: conversations.0.from"):
        load_records(p, "conversation")
