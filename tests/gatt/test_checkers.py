"""GAtt rule checkers on hand-made positive and negative answers, one kind at a time, then `adheres`."""

import pytest

from chatalign.errors import DataError
from chatalign.gatt.checkers import (
    adheres,
    check_hobby,
    check_kind,
    check_language,
    check_public_figure,
    check_uppercase,
    check_word_limit,
)
from chatalign.judges.rules import MIN_LANGUAGE_LETTERS


@pytest.mark.parametrize("text,code", [
    ("Bonjour ! Pour bien dormir, évitez les écrans avant de vous coucher.", "fr"),
    ("Para dormir mejor, evita las pantallas antes de acostarte.", "es"),
    ("Um besser zu schlafen, vermeide Bildschirme vor dem Schlafengehen.", "de"),
    ("Per dormire meglio, evita gli schermi prima di andare a letto.", "it"),
    ("Para dormir melhor, evite telas antes de deitar e tome um chá.", "pt"),
    ("To sleep better, avoid screens before going to bed.", "en"),
    ("TO SLEEP BETTER, AVOID SCREENS BEFORE GOING TO BED.", "en"),  # uppercase answers are identified too
])
def test_language_positive_and_negative(text, code):
    assert check_language(text, code)
    assert not check_language(text, "fr" if code != "fr" else "de")


def test_short_answers_are_undetermined_and_fail():
    short = "Oui, bien sûr."  # 11 letters: below the policy's minimum
    assert sum(c.isalpha() for c in short) < MIN_LANGUAGE_LETTERS
    assert not check_language(short, "fr")
    assert not check_language("", "en")


def test_public_figure_mentions():
    assert check_public_figure("I, Napoleon, would conquer this recipe.", "Napoleon Bonaparte")
    assert check_public_figure("Comme disait Bonaparte : courage !", "Napoleon Bonaparte")
    assert check_public_figure("Je suis Napoléon.", "Napoleon Bonaparte")  # accents folded
    assert check_public_figure("Mozart's advice: practise daily.", "Wolfgang Amadeus Mozart")
    assert not check_public_figure("Pancakes need flour, eggs and milk.", "Napoleon Bonaparte")
    # particles and titles alone identify nobody
    assert not check_public_figure("Da capo, from the top.", "Leonardo da Vinci")
    assert check_public_figure("As da Vinci would sketch it...", "Leonardo da Vinci")
    assert not check_public_figure("The queen of hearts.", "Queen Victoria")
    assert check_public_figure("Victoria here.", "Queen Victoria")


def test_hobby_mentions():
    assert check_hobby("After a tennis match I love pancakes.", "tennis")
    assert check_hobby("My gardens are full of basil.", "gardening")
    assert check_hobby("As a guitarist, I'd say rest.", "playing the guitar")
    assert check_hobby("I went skiing last week.", "skiing")
    assert not check_hobby("That is a useful skill.", "skiing")  # "ski" is a word, not a stem
    assert not check_hobby("Pancakes need flour, eggs and milk.", "tennis")
    assert check_hobby("I love woodturning on weekends.", "woodturning")  # not bundled: its own stem
    assert not check_hobby("I love turning pages.", "woodturning")


def test_word_limit_and_uppercase():
    assert check_word_limit("Try chamomile tea.", 3)
    assert not check_word_limit("Try some chamomile tea.", 3)
    assert not check_word_limit("   ", 3)
    assert not check_word_limit("Try chamomile", 3, finished=False)  # cut by the token limit: length unknown
    assert check_uppercase("TRY CHAMOMILE TEA, 2 CUPS.")
    assert not check_uppercase("TRY chamomile TEA.")
    assert not check_uppercase("123")


@pytest.mark.parametrize("kind,value,good,bad", [
    ("start_phrase", "Sure thing!", "Sure thing! Pancakes need eggs.", "Pancakes need eggs. Sure thing!"),
    ("start_phrase", "Sure thing!", "SURE THING, pancakes need eggs.", "Sure, pancakes need eggs."),
    ("start_phrase", "Here goes:", "  here goes: flour and milk.", "So here goes: flour."),
    ("sign_off", "Hope this helps!", "Use flour. Hope this helps!", "Hope this helps! Use flour."),
    ("sign_off", "Cheers, Sam.", "Use flour.\n\nCheers, Sam", "Use flour. Cheers."),
    ("include_keyword", "banana", "Bananas make pancakes sweet.", "Apples make pancakes sweet."),
    ("include_keyword", "ocean", "The ocean is calm.", "The sea is calm."),
    ("persona_name", "Max", "Max here: rest well.", "Maximum rest is best."),
    ("bullets", True, "Tips:\n- rest\n- drink water", "- rest only"),
    ("bullets", True, "* rest\n* drink water\n* walk", "Rest.\nDrink.\n- walk\n- run"),
    ("numbered_list", True, "1. Rest.\n2) Drink water.", "- Rest.\n- Drink water."),
    ("json", True, '{"answer": "Rest well."}', 'Sure: {"answer": "Rest well."}'),
    ("json", True, '```json\n{"tips": ["rest"]}\n```', '["rest", "water"]'),
    ("emoji", "\U0001F60A", "\U0001F31F Rest well.", "Rest well \U0001F31F"),
    ("emoji", "\U0001F60A", "\u2600\ufe0f Sunny days help.", ":) Rest well."),
    ("uppercase", True, "REST WELL.", "Rest well."),
    ("word_limit", 3, "Rest well.", "Rest well tonight, friend."),
])
def test_each_training_kind_on_hand_made_answers(kind, value, good, bad):
    assert check_kind(good, kind, value)
    assert not check_kind(bad, kind, value)
    assert not check_kind("   ", kind, value)


@pytest.mark.parametrize("spec,good,bad", [
    ({"type": "lowercase"}, "rest well, my friend.", "Rest well."),
    ({"type": "regex", "pattern": "\\?[\"')\\]]*\\s*$"}, "Rest well. Want more tips?", "Want tips? Rest."),
    ({"type": "language", "code": "nl"}, "Slaap goed en drink genoeg water voor het slapengaan.",
     "Sleep well and drink enough water before bed."),
    ({"type": "max_sentences", "value": 1}, "Rest well tonight.", "Rest well. Drink water."),
])
def test_held_out_kinds_are_checked_by_their_rule_spec(spec, good, bad):
    assert check_kind(good, "held_out", spec)
    assert not check_kind(bad, "held_out", spec)


def test_adheres_reports_each_kind_and_all():
    c = {"language": "fr", "word_limit": 12}
    ok = adheres("Pour bien dormir, évitez les écrans le soir.", c)
    assert ok == {"language": True, "word_limit": True, "all": True}
    long_fr = adheres("Pour bien dormir, évitez les écrans le soir et buvez une tisane chaude avant d'aller au lit.", c)
    assert long_fr == {"language": True, "word_limit": False, "all": False}
    assert adheres("", {"uppercase": True}) == {"uppercase": False, "all": False}
    cut = adheres("POUR BIEN DORMIR, ÉVITEZ LES ÉCRANS", {"word_limit": 12, "uppercase": True}, finished=False)
    assert cut == {"word_limit": False, "uppercase": True, "all": False}
    with pytest.raises(DataError, match="no checker"):
        adheres("x", {"mood": "happy"})
