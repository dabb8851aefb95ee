"""GAtt rule checkers on positive and negative examples, one family at a time, then `adheres`."""

import pytest

from chatalign.errors import DataError
from chatalign.gatt.checkers import (
    MIN_LANGUAGE_LETTERS,
    adheres,
    check_answer_length,
    check_format,
    check_hobby,
    check_language,
    check_public_figure,
    detect_language,
)


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


def test_language_is_deterministic():
    text = "Bonjour, monsieur, I am your chef and I have a new recipe"  # mixed: a close call
    assert len({detect_language(text) for _ in range(5)}) == 1


def test_short_answers_are_undetermined_and_fail():
    short = "Oui, bien sûr."  # 11 letters: below the policy's minimum
    assert sum(c.isalpha() for c in short) < MIN_LANGUAGE_LETTERS
    assert detect_language(short) is None
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


def test_answer_length_and_format():
    assert check_answer_length("Try chamomile tea.", 3)
    assert not check_answer_length("Try some chamomile tea.", 3)
    assert not check_answer_length("   ", 3)
    assert not check_answer_length("Try chamomile", 3, finished=False)  # cut by the token limit: length unknown
    assert check_format("TRY CHAMOMILE TEA, 2 CUPS.", "uppercase")
    assert not check_format("TRY chamomile TEA.", "uppercase")
    assert not check_format("123", "uppercase")
    with pytest.raises(DataError):
        check_format("ABC", "lowercase")


def test_adheres_reports_each_family_and_all():
    c = {"language": "fr", "answer_length": 12}
    ok = adheres("Pour bien dormir, évitez les écrans le soir.", c)
    assert ok == {"language": True, "answer_length": True, "all": True}
    long_fr = adheres("Pour bien dormir, évitez les écrans le soir et buvez une tisane chaude avant d'aller au lit.", c)
    assert long_fr == {"language": True, "answer_length": False, "all": False}
    assert adheres("", {"format": "uppercase"}) == {"format": False, "all": False}
    cut = adheres("POUR BIEN DORMIR, ÉVITEZ LES ÉCRANS", {"answer_length": 12, "format": "uppercase"}, finished=False)
    assert cut == {"answer_length": False, "format": True, "all": False}
    with pytest.raises(DataError, match="no checker"):
        adheres("x", {"mood": "happy"})
