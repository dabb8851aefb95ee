"""Rule checkers for GAtt constraints: does an answer keep the instruction? One checker per family.

Which are exact rules and which are heuristics (the evaluation report repeats this):
  answer_length  exact: 1 to N whitespace-separated words (chatalign.judges.rules "max_words"), and the answer is
                 complete: one cut by max_new_tokens fails, since its full length is unknown (else a token
                 cap below N words would make every answer pass).
  format         exact: at least one letter and no lowercase letter (chatalign.judges.rules "uppercase").
  language       statistical: langdetect's most probable language must be the asked one. langdetect is
                 randomised; the seed is fixed (DetectorFactory.seed = 0) so a verdict never changes between
                 runs. Minimum length policy: under MIN_LANGUAGE_LETTERS letters langdetect is unreliable
                 ("Ja" comes out Indonesian), so such an answer is *undetermined* and counts as not adhering
                 (an empty or one-word answer has not shown that it keeps the language).
  public_figure  heuristic: the answer mentions a part of the figure's name ("Napoleon", "Bonaparte";
                 particles like "da" and titles like "Queen" are not enough). An answer in character that
                 never names the figure fails; one that names the figure without playing it passes.
  hobby          heuristic: the answer mentions the hobby (its word, inflections, a few related words for
                 the bundled hobbies: "racket" for tennis). English keywords only: a mention translated into
                 another language is missed.
Names and keywords are compared case- and accent-insensitively on word starts.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from chatalign.errors import DataError
from chatalign.judges.rules import run_check

MIN_LANGUAGE_LETTERS = 15
HEURISTIC_FAMILIES = ("public_figure", "hobby")

# Keywords per bundled hobby. "stem*" matches any word starting with stem; a bare word matches that word only.
HOBBY_KEYWORDS: dict[str, tuple[str, ...]] = {
    "tennis": ("tennis", "racket*", "racquet*"),
    "chess": ("chess", "checkmate*"),
    "gardening": ("garden*",),
    "painting": ("paint*",),
    "hiking": ("hike", "hikes", "hiking", "hiker*", "trail*"),
    "cooking": ("cook*",),
    "photography": ("photo*", "camera*"),
    "knitting": ("knit*", "yarn*"),
    "fishing": ("fish", "fishing", "fisher*", "angling"),
    "cycling": ("cycling", "cyclist*", "bicycle*"),
    "birdwatching": ("bird*",),
    "playing the guitar": ("guitar*",),
    "baking": ("bake", "bakes", "baking", "baked", "baker*"),
    "swimming": ("swim*",),
    "astronomy": ("astronom*", "telescope*", "stars"),
    "pottery": ("pottery", "potter", "clay", "ceramic*"),
    "skiing": ("ski", "skis", "skiing", "skier*"),
    "reading mystery novels": ("myster*", "novel*", "detective*"),
    "surfing": ("surf*",),
    "woodworking": ("woodwork*", "carpent*"),
}
# Words that do not identify a hobby or a person on their own.
_STOPWORDS = {"the", "a", "an", "of", "and", "playing", "reading", "da", "de", "di", "von", "van", "der", "la", "le",
              "queen", "king", "sir", "saint", "lord", "lady"}


def fold(text: str) -> str:
    """Lowercase without accents ("Napoléon" -> "napoleon"), for keyword matching."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern:
    alts = [re.escape(fold(k[:-1])) + r"\w*" if k.endswith("*") else re.escape(fold(k)) + r"\b" for k in keywords]
    return re.compile(r"\b(?:" + "|".join(alts) + ")")


def hobby_keywords(hobby: str) -> tuple[str, ...]:
    """Bundled keywords, or for another hobby its content words as stems ("woodturning" -> "woodturn*")."""
    if hobby in HOBBY_KEYWORDS:
        return HOBBY_KEYWORDS[hobby]
    words = [w for w in re.findall(r"\w+", fold(hobby)) if w not in _STOPWORDS and len(w) >= 3]
    return tuple((w[:-3] if w.endswith("ing") and len(w) >= 7 else w) + "*" for w in words)


def figure_keywords(figure: str) -> tuple[str, ...]:
    """Name parts of at least 3 letters that are not particles or titles ("Queen Victoria" -> "victoria")."""
    words = [w for w in re.findall(r"\w+", fold(figure)) if w not in _STOPWORDS and len(w) >= 3]
    return tuple(words) or (fold(figure),)


def mentions(answer: str, keywords: tuple[str, ...]) -> bool:
    return bool(keywords) and _keyword_pattern(keywords).search(fold(answer)) is not None


def count_letters(text: str) -> int:
    return sum(c.isalpha() for c in text)


def detect_language(text: str) -> str | None:
    """langdetect's most probable language code (seeded), or None below MIN_LANGUAGE_LETTERS letters."""
    if count_letters(text) < MIN_LANGUAGE_LETTERS:
        return None
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0  # langdetect samples n-grams at random; a fixed seed makes verdicts repeatable
    try:
        # Lowercased: uppercase answers (the format constraint) are identified as well as ordinary ones.
        found = detect_langs(text.lower())
    except LangDetectException:
        return None
    return found[0].lang if found else None


def check_language(answer: str, code: str) -> bool:
    return detect_language(answer) == str(code)


def check_public_figure(answer: str, figure: str) -> bool:
    return mentions(answer, figure_keywords(str(figure)))


def check_hobby(answer: str, hobby: str) -> bool:
    return mentions(answer, hobby_keywords(str(hobby)))


def check_answer_length(answer: str, max_words: int, finished: bool = True) -> bool:
    return finished and run_check(answer, {"type": "max_words", "value": int(max_words)})


def check_format(answer: str, fmt: str) -> bool:
    if fmt != "uppercase":
        raise DataError(f"format constraint {fmt!r}: only 'uppercase' can be checked")
    return run_check(answer, {"type": "uppercase"})


CHECKERS: dict[str, Callable[[str, object], bool]] = {
    "hobby": check_hobby,
    "language": check_language,
    "public_figure": check_public_figure,
    "answer_length": check_answer_length,
    "format": check_format,
}


def adheres(answer: str, constraints: dict[str, str | int], finished: bool = True) -> dict[str, bool]:
    """{family: passed} for every constraint, plus "all": every one passed (an empty answer passes none).

    `finished=False`: the answer was cut by the token limit; only the length verdict depends on it.
    """
    result = {}
    for family, value in constraints.items():
        if family not in CHECKERS:
            raise DataError(f"no checker for constraint family {family!r}; known: {', '.join(CHECKERS)}")
        if family == "answer_length":
            result[family] = bool(answer.strip()) and check_answer_length(answer, int(value), finished)
        else:
            result[family] = bool(answer.strip()) and CHECKERS[family](answer, value)
    result["all"] = all(result.values()) if constraints else bool(answer.strip())
    return result
