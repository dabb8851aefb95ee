"""The shape of an answer, for the GAtt checkers and repairs: its sentences, its first and last words, its list
items, whether it is a JSON object, whether it opens with an emoji. Pure stdlib."""

from __future__ import annotations

import json
import re
import unicodedata

# A sentence ends at . ! ? (or their CJK forms), then any closing quotes or brackets, then a space or the end.
SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f][\"')\]\u00bb\u201d]*(?=\s|$)")
BULLET_LINE = re.compile(r"^\s*[-*+\u2022]\s+\S")
NUMBERED_LINE = re.compile(r"^\s*\d{1,2}[.)]\s+\S")
_ITEM_MARK = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*+\u2022])\s+")
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL | re.IGNORECASE)
# Pictographic blocks (emoticons, symbols and pictographs, transport, dingbats, misc symbols) and regional flags.
_EMOJI = re.compile("[\U0001F300-\U0001FAFF\U00002600-\U000027BF\U0001F1E6-\U0001F1FF\u2B50\u2B55\u2764]")


def fold(text: str) -> str:
    """Lowercase without accents ("Napoléon" -> "napoleon"), for keyword matching."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def words(text: str) -> list[str]:
    """The folded words of a text, punctuation and emoji left out ("Hope this helps!" -> hope, this, helps)."""
    return re.findall(r"\w+", fold(text))


def split_sentences(text: str) -> list[str]:
    """The text's sentences, each with its end mark; a last part without one is a sentence too; list markers
    and line breaks also separate sentences."""
    out = []
    for line in text.splitlines():
        line = _ITEM_MARK.sub("", line).strip()
        start = 0
        for m in SENTENCE_END.finditer(line):
            out.append(line[start:m.end()].strip())
            start = m.end()
        if line[start:].strip():
            out.append(line[start:].strip())
    return [s for s in out if s]


def starts_with_phrase(answer: str, phrase: str) -> bool:
    """The answer's first words are the phrase's words (case, accents and punctuation aside)."""
    want, got = words(phrase), words(answer)
    return bool(want) and got[:len(want)] == want


def ends_with_phrase(answer: str, phrase: str) -> bool:
    """The answer's last words are the phrase's words (case, accents and punctuation aside)."""
    want, got = words(phrase), words(answer)
    return bool(want) and got[-len(want):] == want


def list_items(answer: str, numbered: bool) -> tuple[int, int]:
    """(list item lines, other non-empty lines): "- x" / "* x" bullets, or "1. x" / "2) x" numbers."""
    pattern = NUMBERED_LINE if numbered else BULLET_LINE
    lines = [ln for ln in answer.splitlines() if ln.strip()]
    items = sum(bool(pattern.match(ln)) for ln in lines)
    return items, len(lines) - items


def is_list(answer: str, numbered: bool) -> bool:
    """At least two items, and at most one line that is not an item (an introduction)."""
    items, others = list_items(answer, numbered)
    return items >= 2 and others <= 1


def json_object(answer: str) -> dict | None:
    """The answer as a JSON object: the whole text, or the whole text inside a ``` fence; else None."""
    text = answer.strip()
    fenced = _FENCE.match(text)
    try:
        value = json.loads(fenced.group(1) if fenced else text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def starts_with_emoji(answer: str) -> bool:
    text = answer.lstrip()
    return bool(text) and _EMOJI.match(text) is not None
