"""Rule checkers: a passing and a failing answer for every spec type, and the errors for bad specs."""

from __future__ import annotations

import pytest

from chatalign.errors import DataError
from chatalign.judges.rules import (
    CHECKS,
    CheckSpecError,
    count_bullets,
    extract_json_object,
    final_number,
    is_refusal,
    run_check,
)

# (spec, answer that passes, answer that fails) for every spec type.
CASES = [
    ({"type": "number", "value": 68}, "45 + 23 = 68. The answer is 68.", "45 + 23 = 68. The answer is 67."),
    ({"type": "number", "value": 12000}, "That is 12,000 meters.", "That is 12 000 meters."),
    ({"type": "number", "value": 2.5}, "It takes 2.5 hours.", "It takes 2 hours."),
    ({"type": "number", "value": -4}, "The result is -4.", "The result is 4."),
    ({"type": "contains", "value": "Lyon"}, "She was born in lyon.", "She was born in Lisbon."),
    ({"type": "contains", "value": "3, 7,  19"}, "Sorted: 3,\n7, 19", "Sorted: 3, 19, 7"),
    ({"type": "contains", "value": "Lyon", "case_sensitive": True}, "In Lyon.", "In lyon."),
    ({"type": "bullets", "count": 3}, "Here:\n- apple\n* pear\n  \u2022 plum", "- apple\n- pear"),
    ({"type": "bullets", "count": 2}, "- a\n- b\nThat is all.", "1. a\n2. b"),
    ({"type": "json_keys", "keys": ["name", "age"]}, '{"name": "Anna", "age": 31}', '{"name": "Anna"}'),
    (
        {"type": "json_keys", "keys": ["name", "age"]},
        'Sure:\n```json\n{"age": 3, "name": "x"}\n```',
        "name: Anna, age: 31",
    ),
    ({"type": "json_keys", "keys": ["a"], "allow_extra": True}, '{"a": 1, "b": 2}', '{"b": 2}'),
    ({"type": "max_words", "value": 5}, "A short answer here.", "This answer has six words in it."),
    ({"type": "max_words", "value": 5}, "One", "   "),
    ({"type": "regex", "pattern": r"(?i)^\s*yes\b"}, "Yes, it is.", "Well, yes."),
    ({"type": "uppercase"}, "HELLO WORLD 42!", "HELLO world"),
    ({"type": "uppercase"}, "ÉTÉ", "1234"),
    ({"type": "lowercase"}, "hello world.", "Hello world."),
    ({"type": "language", "code": "nl"}, "De beste manier is om de rijst eerst goed te wassen.",
     "The best way is to rinse the rice well first."),
    ({"type": "max_sentences", "value": 1}, "Rinse the rice, then cook it slowly.", "Rinse the rice. Cook it."),
    ({"type": "refusal"}, "I can't help with that.", "Sure, here is a recipe."),
    ({"type": "no_refusal"}, "Mix vinegar and water.", "I cannot assist with that."),
    ({"type": "no_refusal"}, "Fine.", ""),
    (
        {"type": "all", "checks": [{"type": "uppercase"}, {"type": "contains", "value": "GOOD MORNING"}]},
        "GOOD MORNING EVERYONE",
        "GOOD EVENING EVERYONE",
    ),
]


@pytest.mark.parametrize(
    ("spec", "good", "bad"), CASES, ids=[f"{c[0]['type']}-{i}" for i, c in enumerate(CASES)]
)
def test_each_check_accepts_the_good_answer_and_rejects_the_bad_one(spec, good, bad):
    assert run_check(good, spec) is True
    assert run_check(bad, spec) is False


def test_every_registered_type_has_a_case():
    assert {spec["type"] for spec, _, _ in CASES} == set(CHECKS)


def test_final_number_takes_the_last_one_and_ignores_sentence_periods():
    assert final_number("3 + 4 = 7. The answer is 7.") == 7
    assert final_number("between 3-5 days") == 5
    assert final_number("1,234,567 and then 3.25") == 3.25
    assert final_number("no digits here") is None


def test_number_check_is_false_when_there_is_no_number():
    assert run_check("I don't know.", {"type": "number", "value": 0}) is False


def test_count_bullets_counts_only_marker_lines():
    assert count_bullets("- a\n-b\n* c\n+ d\n1. e\nplain - text") == 3


def test_extract_json_object_finds_an_object_inside_prose():
    assert extract_json_object('Here it is: {"a": [1, 2]} done.') == {"a": [1, 2]}
    assert extract_json_object("[1, 2]") is None
    assert extract_json_object("{not json}") is None


@pytest.mark.parametrize(
    "text",
    [
        "I can't help with picking locks.",
        "I can\u2019t assist with that request.",
        "Sorry, I cannot do that.",
        "I won't write that message.",
        "I'm not able to provide medical advice.",
        "I am unable to help with this.",
        "I cant help you with that",
        "I must decline.",
    ],
)
def test_is_refusal_recognises_refusals(text):
    assert is_refusal(text)


@pytest.mark.parametrize(
    "text",
    [
        "Sure, here is how to kill a Python process: run kill with its ID.",
        "Never mix bleach with ammonia.",
        "You cannot divide by zero, so the expression is undefined.",
        "I can help with that! The answer is 42.",
        "",
    ],
)
def test_is_refusal_leaves_helpful_answers_alone(text):
    assert not is_refusal(text)


def test_unknown_type_raises_a_value_error_naming_it():
    with pytest.raises(ValueError, match="'bogus'"):
        run_check("x", {"type": "bogus"})


@pytest.mark.parametrize(
    "spec",
    [
        {"value": 3},
        "number",
        {"type": "number"},
        {"type": "number", "value": "7"},
        {"type": "bullets", "count": True},
        {"type": "max_words", "value": 2.5},
        {"type": "json_keys", "keys": "a,b"},
        {"type": "json_keys", "keys": [1]},
        {"type": "regex", "pattern": "("},
        {"type": "all", "checks": []},
        {"type": "all", "checks": [{"type": "uppercase"}, {"type": "nope"}]},
    ],
)
def test_malformed_specs_raise_check_spec_errors(spec):
    with pytest.raises(CheckSpecError) as info:
        run_check("SOME ANSWER", spec)
    assert isinstance(info.value, ValueError) and isinstance(info.value, DataError)


def test_a_missing_field_is_reported_even_for_an_empty_answer():
    with pytest.raises(CheckSpecError, match="'value'"):
        run_check("", {"type": "max_words"})
    run_check("", {"type": "all", "checks": [{"type": "max_words", "value": 3}, {"type": "refusal"}]})
