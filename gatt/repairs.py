"""Faithful mechanical repairs of a sampled answer that misses a format constraint (GAtt synthesis).

A 135M model sampled with "Begin every reply with 'Sure thing!'" in every user turn rarely does it, so
rejection sampling alone leaves GAtt nothing to train on for most kinds. Where a constraint is about form, not
content, the answer can be brought into form without changing what it says:
  start_phrase   the phrase, then the answer              sign_off   the answer, then the phrase
  emoji          the kind's emoji, then the answer        uppercase  the answer in uppercase
  word_limit     the answer cut after its last sentence that ends within the limit (none fits: no repair)
  bullets / numbered_list   one item per sentence (fewer than two sentences: no repair)
  json           {"answer": <the answer>}
Kinds about content (language, include_keyword, persona_name, hobby, public_figure) have no repair: an answer
that does not keep them is dropped (a keyword sentence bolted on would teach the model to bolt words on).
A repaired answer is recorded as such (synthesis counts them per kind).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from chatalign.gatt.checkers import adheres
from chatalign.gatt.text_shape import json_object, split_sentences

# Content first (cuts, structure), then what is put around the answer, then case: a later repair never undoes
# an earlier one (a phrase prepended before the cut could be cut off; phrases compare case-insensitively).
ORDER = ("word_limit", "bullets", "numbered_list", "json", "start_phrase", "emoji", "sign_off", "uppercase")
ADDED = ("start_phrase", "sign_off")  # repairs that add words: a word-limit cut leaves room for them


def cut_to_word_limit(answer: str, limit: int) -> str | None:
    """The answer's leading sentences that fit in `limit` words; None when even the first does not."""
    kept: list[str] = []
    for sentence in split_sentences(answer):
        if len(" ".join([*kept, sentence]).split()) > limit:
            break
        kept.append(sentence)
    return " ".join(kept) if kept else None


def as_list(answer: str, numbered: bool) -> str | None:
    """One item per sentence ("- a\\n- b", or "1. a\\n2. b"); None under two sentences."""
    sentences = split_sentences(answer)
    if len(sentences) < 2:
        return None
    return "\n".join(f"{i}. {s}" if numbered else f"- {s}" for i, s in enumerate(sentences, 1))


def as_json(answer: str) -> str | None:
    """{"answer": text}; None when the text already holds a (broken) JSON attempt."""
    if json_object(answer) is not None:
        return answer
    if "{" in answer:
        return None
    return json.dumps({"answer": answer.strip()}, ensure_ascii=False)


def prepend(answer: str, phrase: str) -> str:
    return f"{phrase} {answer.lstrip()}"


def append(answer: str, phrase: str) -> str:
    return f"{answer.rstrip()} {phrase}"


REPAIRS: dict[str, Callable[[str, object], str | None]] = {
    "word_limit": lambda a, v: cut_to_word_limit(a, int(v)),
    "bullets": lambda a, _v: as_list(a, numbered=False),
    "numbered_list": lambda a, _v: as_list(a, numbered=True),
    "json": lambda a, _v: as_json(a),
    "uppercase": lambda a, _v: a.upper(),
    "start_phrase": lambda a, v: prepend(a, str(v)),
    "emoji": lambda a, v: f"{v} {a.lstrip()}",
    "sign_off": lambda a, v: append(a, str(v)),
}


def repair(answer: str, constraints: dict) -> str | None:
    """The answer with every failing form constraint repaired (in ORDER), if the result keeps every
    constraint; None when a failing constraint has no repair or the repairs do not make it pass."""
    text = answer.strip()
    if not text:
        return None
    verdict = adheres(text, constraints)
    if verdict["all"]:
        return text
    if any(not ok and kind not in REPAIRS for kind, ok in verdict.items() if kind != "all"):
        return None
    to_add = [kind for kind in ADDED if kind in constraints and not verdict[kind]]
    room = sum(len(str(constraints[kind]).split()) for kind in to_add)
    for kind in ORDER:
        if kind in constraints and not adheres(text, {kind: constraints[kind]})[kind]:
            value = int(constraints[kind]) - room if kind == "word_limit" else constraints[kind]
            fixed = REPAIRS[kind](text, value)
            if fixed is None:
                return None
            text = fixed
    return text if adheres(text, constraints)["all"] else None
