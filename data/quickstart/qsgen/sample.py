"""One generated task instance: the prompt, a reference answer, its check, and graded worse answers.

The graded answers feed the helpfulness preferences, so that the preference strength tracks a measurable gap:
  alt       another correct answer of the same quality        -> negligibly_better / unsure pairs
  mild      still passes the check, but worse (verbose, vague) -> slightly_better pairs
  moderate  fails the check by a near miss (off by one, K+1 bullets, one wrong key) -> better pairs
  severe    fails badly or ignores the instruction (no bullets at all, prose instead of JSON) -> significantly_better
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random


@dataclass
class Sample:
    task: str
    prompt: str
    answer: str
    check: dict
    alt: str
    mild: str
    moderate: str
    severe: str
    # What a follow-up turn needs to refer back to this one (the result, the passage, the phrase, ...).
    state: dict = field(default_factory=dict)


# task name -> make(rng, split) -> Sample
TaskMaker = Callable[[Random, str], Sample]
# task name -> follow_up(previous sample, rng, split) -> Sample that refers back to it
FollowUp = Callable[[Sample, Random, str], Sample]

FILLER_SENTENCES = [
    "People have talked about this for a very long time.",
    "There are many different kinds, and each one is a little different.",
    "You can read much more about it in books and online.",
    "It is something that comes up often in everyday life.",
    "Many people find it interesting once they learn more about it.",
    "Of course, the details can vary from place to place.",
]


def pad_past(text: str, limit: int, rng: Random, extra: int) -> str:
    """Append filler sentences to `text` until it has more than limit + extra words."""
    fillers = FILLER_SENTENCES[:]
    rng.shuffle(fillers)
    i = 0
    while len(text.split()) <= limit + extra:
        text = text + " " + fillers[i % len(fillers)]
        i += 1
    return text


def article(noun: str) -> str:
    return "an" if noun[0].lower() in "aeiou" else "a"
