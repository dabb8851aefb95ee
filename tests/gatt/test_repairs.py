"""Repairs of answers that miss a form constraint: each keeps the answer's words and passes its check; kinds
about content are never repaired."""

import pytest

from chatalign.gatt.checkers import adheres
from chatalign.gatt.repairs import as_list, cut_to_word_limit, repair
from chatalign.gatt.text_shape import split_sentences, words

ANSWER = "Pancakes need flour, eggs and milk. Whisk them until smooth. Fry each one in butter."


@pytest.mark.parametrize("constraints,expected", [
    ({"start_phrase": "Sure thing!"}, "Sure thing! " + ANSWER),
    ({"sign_off": "Hope this helps!"}, ANSWER + " Hope this helps!"),
    ({"emoji": "\U0001F60A"}, "\U0001F60A " + ANSWER),
    ({"uppercase": True}, ANSWER.upper()),
    ({"json": True}, '{"answer": "' + ANSWER + '"}'),
    ({"bullets": True}, "- Pancakes need flour, eggs and milk.\n- Whisk them until smooth.\n- Fry each one in butter."),
    ({"numbered_list": True}, "1. Pancakes need flour, eggs and milk.\n2. Whisk them until smooth.\n"
                              "3. Fry each one in butter."),
    ({"word_limit": 12}, "Pancakes need flour, eggs and milk. Whisk them until smooth."),
])
def test_each_repair_passes_its_check_and_keeps_the_content(constraints, expected):
    assert not adheres(ANSWER, constraints)["all"]
    fixed = repair(ANSWER, constraints)
    assert fixed == expected
    assert adheres(fixed, constraints)["all"]
    kept = words(fixed)
    if "word_limit" not in constraints:  # every word of the answer is still there, in order
        assert [w for w in kept if w in words(ANSWER)][:len(words(ANSWER))] == words(ANSWER)
    else:  # a cut keeps whole leading sentences
        assert ANSWER.startswith(fixed)


def test_repairs_combine_in_an_order_that_keeps_every_constraint():
    c = {"word_limit": 10, "start_phrase": "Sure thing!", "uppercase": True}
    fixed = repair(ANSWER, c)
    assert fixed == "SURE THING! PANCAKES NEED FLOUR, EGGS AND MILK."  # room left for the phrase
    assert adheres(fixed, c)["all"]
    both = repair(ANSWER, {"bullets": True, "sign_off": "Good luck!"})
    assert both.startswith("- Pancakes") and both.endswith("Good luck!")


def test_no_repair_where_none_is_faithful():
    assert repair(ANSWER, {"language": "fr"}) is None  # content kinds: drop the answer
    assert repair(ANSWER, {"include_keyword": "banana"}) is None
    assert repair(ANSWER, {"persona_name": "Max", "uppercase": True}) is None
    assert repair("Pancakes need flour, eggs, milk and a great deal of patience.", {"word_limit": 5}) is None
    assert repair("Just one sentence here.", {"bullets": True}) is None  # a list needs two items
    assert repair('{"answer": "Pancakes', {"json": True}) is None  # a broken JSON attempt is not wrapped
    assert repair("   ", {"uppercase": True}) is None


def test_a_passing_answer_comes_back_unchanged():
    assert repair("SURE THING! YES.", {"uppercase": True, "start_phrase": "Sure thing!"}) == "SURE THING! YES."


def test_helpers():
    assert cut_to_word_limit(ANSWER, 4) is None
    assert cut_to_word_limit(ANSWER, 100) == ANSWER
    assert as_list("One.", numbered=False) is None
    assert split_sentences("Tips:\n- rest well\n2. drink water. Walk!") == ["Tips:", "rest well", "drink water.",
                                                                              "Walk!"]
