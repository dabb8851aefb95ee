"""Rule checkers for GAtt constraints: does an answer keep the instruction? One checker per kind.

Exact rules (case, accents and punctuation aside where words are compared):
  start_phrase / sign_off  the answer's first / last words are the phrase's words.
  uppercase                at least one letter and no lowercase letter (chatalign.judges.rules "uppercase").
  word_limit               1 to N whitespace-separated words, and the answer is complete: one cut by
                           max_new_tokens fails, since its full length is unknown.
  bullets / numbered_list  at least two "- item" / "1. item" lines and at most one other line (an intro).
  json                     the whole answer (or a ``` fence around all of it) parses as a JSON object.
  emoji                    the first character is a pictographic emoji.
  a dict value             a `chatalign.judges.rules` check spec (the held-out kinds of data/independent).
Statistical:
  language   langdetect's most probable language must be the asked one (chatalign.judges.rules "language":
             seeded, so a verdict never changes). Under MIN_LANGUAGE_LETTERS letters langdetect is unreliable
             ("Ja" comes out Indonesian), so such an answer is *undetermined* and counts as not adhering.
Heuristics (HEURISTIC_KINDS): the answer mentions a word.
  include_keyword  the keyword, or a word starting with it ("bananas").
  persona_name     the name.
  public_figure    a part of the figure's name ("Napoleon", "Bonaparte"; particles like "da" and titles like
                   "Queen" are not enough): one in character that never names the figure fails.
  hobby            the hobby (its word, inflections, a few related words for the bundled hobbies: "racket"
                   for tennis). English keywords only: a mention translated into another language is missed.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from chatalign.errors import DataError
from chatalign.gatt import text_shape as shape
from chatalign.gatt.text_shape import fold
from chatalign.judges.rules import run_check

HEURISTIC_KINDS = ("include_keyword", "persona_name", "public_figure", "hobby")

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


def check_language(answer: str, code: str) -> bool:
    return run_check(answer, {"type": "language", "code": str(code)})


def check_public_figure(answer: str, figure: str) -> bool:
    return mentions(answer, figure_keywords(str(figure)))


def check_hobby(answer: str, hobby: str) -> bool:
    return mentions(answer, hobby_keywords(str(hobby)))


def check_word_limit(answer: str, max_words: int, finished: bool = True) -> bool:
    return finished and run_check(answer, {"type": "max_words", "value": int(max_words)})


def check_uppercase(answer: str, _value=True) -> bool:
    return run_check(answer, {"type": "uppercase"})


def check_keyword(answer: str, word: str) -> bool:
    return mentions(answer, (str(word) + "*",))


def check_name(answer: str, name: str) -> bool:
    return mentions(answer, (str(name),))


CHECKERS: dict[str, Callable[[str, object], bool]] = {
    "language": check_language,
    "start_phrase": lambda a, v: shape.starts_with_phrase(a, str(v)),
    "sign_off": lambda a, v: shape.ends_with_phrase(a, str(v)),
    "include_keyword": check_keyword,
    "uppercase": check_uppercase,
    "bullets": lambda a, _v: shape.is_list(a, numbered=False),
    "numbered_list": lambda a, _v: shape.is_list(a, numbered=True),
    "json": lambda a, _v: shape.json_object(a) is not None,
    "persona_name": check_name,
    "emoji": lambda a, _v: shape.starts_with_emoji(a),
    "hobby": check_hobby,
    "public_figure": check_public_figure,
}


def check_kind(answer: str, kind: str, value, finished: bool = True) -> bool:
    """One constraint's verdict; an empty answer keeps none. A dict value is a rules spec (any kind name)."""
    if not answer.strip():
        return False
    if isinstance(value, dict):
        return run_check(answer, value)
    if kind == "word_limit":
        return check_word_limit(answer, int(value), finished)
    if kind not in CHECKERS:
        raise DataError(f"no checker for constraint kind {kind!r}; known: word_limit, {', '.join(CHECKERS)} "
                        "(or give a rules check spec as the value)")
    return CHECKERS[kind](answer, value)


def adheres(answer: str, constraints: dict, finished: bool = True) -> dict[str, bool]:
    """{kind: passed} for every constraint, plus "all": every one passed (an empty answer passes none).

    `finished=False`: the answer was cut by the token limit; only the word-limit verdict depends on it.
    """
    result = {kind: check_kind(answer, kind, value, finished) for kind, value in constraints.items()}
    result["all"] = all(result.values()) if constraints else bool(answer.strip())
    return result
