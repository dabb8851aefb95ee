"""The canonical models on their own: every rule, and where its error points."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from chatalign.data_schemas import KINDS, Comparison, Conversation, Message, Preference, Prompt, Strength


def user(text="hi"):
    return {"role": "user", "content": text}


def assistant(text="hello"):
    return {"role": "assistant", "content": text}


def system(text="be brief"):
    return {"role": "system", "content": text}


def only_error(exc_info) -> dict:
    errors = exc_info.value.errors()
    assert len(errors) == 1, errors
    return errors[0]


def test_message_accepts_the_three_roles():
    for role in ("system", "user", "assistant"):
        assert Message(role=role, content="x").role == role


@pytest.mark.parametrize("content", ["", "   ", "\n\t"])
def test_message_content_must_not_be_blank(content):
    with pytest.raises(ValidationError) as e:
        Message(role="user", content=content)
    err = only_error(e)
    assert err["loc"] == ("content",) and "must not be empty" in err["msg"]


def test_message_rejects_unknown_role_and_extra_key_and_lone_surrogate():
    with pytest.raises(ValidationError) as e:
        Message(role="tool", content="x")
    assert only_error(e)["loc"] == ("role",)
    with pytest.raises(ValidationError) as e:
        Message.model_validate({"role": "user", "content": "x", "name": "bob"})
    assert only_error(e)["type"] == "extra_forbidden"
    with pytest.raises(ValidationError) as e:
        Message(role="user", content="bad \ud800 text")
    assert "lone surrogate" in only_error(e)["msg"]


def test_conversation_valid_with_and_without_system():
    c = Conversation(
        messages=[system(), user(), assistant(), user("more"), assistant("sure")], id="c1", tags=["x"]
    )
    assert [m.role for m in c.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert Conversation(messages=[user(), assistant()]).tags == []


@pytest.mark.parametrize(
    ("messages", "at", "words"),
    [
        ([user(), assistant(), user("again")], "2.role", "must end with an assistant"),
        ([user()], "0.role", "must end with an assistant"),
        ([system()], "0.role", "must end with an assistant"),
        ([user(), system(), assistant()], "1.role", "system message is only allowed as the first"),
        ([assistant(), user(), assistant()], "0.role", "expected user, got assistant"),
        ([user(), user("twice"), assistant()], "1.role", "expected assistant, got user"),
        ([system(), assistant()], "1.role", "expected user, got assistant"),
    ],
)
def test_conversation_turn_order_errors_point_at_the_message(messages, at, words):
    with pytest.raises(ValidationError) as e:
        Conversation(messages=messages)
    err = only_error(e)
    assert err["loc"] == ("messages",)
    assert err["ctx"]["at"] == at
    assert words in err["msg"]


def test_conversation_needs_messages():
    with pytest.raises(ValidationError) as e:
        Conversation(messages=[])
    assert "at least one message" in only_error(e)["msg"]
    with pytest.raises(ValidationError) as e:
        Conversation.model_validate({})
    assert only_error(e)["type"] == "missing"


def test_preference_valid_with_every_field():
    p = Preference(
        prompt=[system(), user()],
        chosen="a",
        rejected="b",
        strength="better",
        chosen_safe=True,
        rejected_safe=False,
        category="safety",
        id="p1",
        source="hand",
    )
    assert p.strength is Strength.better
    assert p.model_dump(mode="json")["strength"] == "better"


@pytest.mark.parametrize(
    ("change", "loc", "words"),
    [
        ({"rejected": "  same answer "}, ("rejected",), "identical to chosen"),
        ({"chosen": " "}, ("chosen",), "must not be empty"),
        ({"rejected": ""}, ("rejected",), "must not be empty"),
        ({"strength": "much_better"}, ("strength",), "Input should be 'significantly_better'"),
        ({"category": "fun"}, ("category",), "Input should be 'helpfulness' or 'safety'"),
        ({"chosen": 5}, ("chosen",), "valid string"),
        ({"prompt": [user(), assistant()]}, ("prompt",), "must end with a user"),
        ({"margin": 1.0}, ("margin",), "Extra inputs"),
    ],
)
def test_preference_errors(change, loc, words):
    row = {"prompt": [user()], "chosen": "same answer", "rejected": "other"} | change
    with pytest.raises(ValidationError) as e:
        Preference.model_validate(row)
    err = only_error(e)
    assert err["loc"] == loc and words in err["msg"]


def test_strength_labels_are_the_five_of_the_paper():
    assert [s.value for s in Strength] == [
        "significantly_better",
        "better",
        "slightly_better",
        "negligibly_better",
        "unsure",
    ]


def test_prompt_defaults_and_rules():
    p = Prompt(messages=[user()])
    assert (p.is_safety, p.risk_category, p.check, p.tags) == (False, None, None, [])
    p = Prompt(
        messages=[system(), user()],
        is_safety=True,
        risk_category="illicit",
        check={"type": "word_limit", "max": 50},
    )
    assert p.check == {"type": "word_limit", "max": 50}
    with pytest.raises(ValidationError) as e:
        Prompt(messages=[user(), assistant()])
    assert only_error(e)["ctx"]["at"] == "1.role"


def test_kinds_map_names_to_models():
    assert KINDS == {"conversation": Conversation, "preference": Preference, "prompt": Prompt,
                     "comparison": Comparison}


def test_import_is_cheap():
    """The CLI's `data validate` must answer fast: no torch/transformers/datasets/pyarrow at import."""
    code = (
        "import sys, chatalign.data_schemas; "
        "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'pyarrow', 'trl') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
