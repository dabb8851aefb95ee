"""The `language` and `max_sentences` checks on hand-written answers: what counts, and the short-answer policy."""

from __future__ import annotations

import pytest

from chatalign.judges.rules import (
    MIN_LANGUAGE_LETTERS,
    CheckSpecError,
    count_sentences,
    detect_language,
    run_check,
)


@pytest.mark.parametrize(("text", "code"), [
    ("Hallo, hoe gaat het met je vandaag? Ik hoop dat alles goed gaat.", "nl"),
    ("Tack så mycket för hjälpen, det var snällt av dig.", "sv"),
    ("DE BESTE MANIER IS OM DE RIJST EERST GOED TE WASSEN.", "nl"),  # all caps: identified lowercased
    ("The best way is to rinse the rice well before cooking it.", "en"),
])
def test_detect_language(text, code):
    assert detect_language(text) == code


def test_detection_is_repeatable():
    text = "Goedemorgen! Ik help je graag met je vraag over koken."  # nl 0.58 / af 0.42: a close call
    assert len({detect_language(text) for _ in range(5)}) == 1


def test_short_answers_cannot_be_identified_and_fail():
    short = "Ja, dat klopt."  # 11 letters: langdetect alone says Slovenian
    assert sum(c.isalpha() for c in short) < MIN_LANGUAGE_LETTERS
    assert detect_language(short) is None
    assert not run_check(short, {"type": "language", "code": "nl"})
    assert not run_check("", {"type": "language", "code": "nl"})
    assert not run_check("12345 !!! 678", {"type": "language", "code": "nl"})


def test_language_code_is_compared_case_insensitively():
    assert run_check("Tack så mycket för hjälpen, det var snällt av dig.", {"type": "language", "code": " SV"})


@pytest.mark.parametrize(("text", "n"), [
    ("Hello there.", 1),
    ("No final punctuation at all", 1),
    ("Hi. How are you?", 2),
    ("Really?! Yes.", 2),
    ('"A quoted sentence." Then another one.', 2),
    ("Use a pinch, e.g. of salt, and stir. Done!", 2),
    ("It costs 3.50 dollars at Dr. Smith's shop.", 1),
    ("J. K. Rowling wrote it.", 1),
    ("Well... maybe later.", 1),
    ("Wait... What?", 2),
    ("Tips:\n- rinse\n- simmer", 3),  # a list is not one sentence
    ("First line\n\nsecond line", 2),
    ("", 0),
    ("  \n ", 0),
    ("\U0001f642", 0),
])
def test_count_sentences(text, n):
    assert count_sentences(text) == n


def test_max_sentences():
    spec = {"type": "max_sentences", "value": 2}
    assert run_check("One. Two.", spec)
    assert not run_check("One. Two. Three.", spec)
    assert not run_check("   ", spec)  # no answer is not a short answer


@pytest.mark.parametrize("spec", [{"type": "language"}, {"type": "language", "code": 3},
                                  {"type": "max_sentences", "value": "1"}, {"type": "max_sentences", "value": True}])
def test_malformed_specs(spec):
    with pytest.raises(CheckSpecError):
        run_check("Some answer.", spec)
