"""Numeric tasks: arithmetic (answer ends "The answer is N."), unit conversion, sorting. Templates split by split."""

from __future__ import annotations

import re
from random import Random

from qsgen.pools import CONVERSIONS, ITEMS, PEOPLE, SORT_WORDS, numbers, operands
from qsgen.sample import Sample

OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
SHOWN_OP = {"+": "+", "-": "-", "*": "×"}

DIRECT = {
    "train": [
        "What is {a} {op} {b}?",
        "Calculate {a} {op} {b}.",
        "Compute {a} {op} {b} and give the result.",
        "Please work out {a} {op} {b}.",
    ],
    "heldout": ["Find the value of {a} {op} {b}.", "Quick math: {a} {op} {b} = ?"],
}
WORD_PROBLEMS = {
    "train": {
        "+": "{name} has {a} {items} and gets {b} more. How many {items} does {pron} have now?",
        "-": "{name} had {a} {items} and gave away {b}. How many {items} are left?",
        "*": "{name} buys {a} boxes with {b} {items} in each box. How many {items} is that in total?",
    },
    "heldout": {
        "+": "A jar holds {a} {items}. {name} adds {b} more. How many {items} are in the jar?",
        "-": "There were {a} {items} on the table and {name} took {b}. How many remain?",
        "*": "Each of {a} bags contains {b} {items}. How many {items} are there altogether?",
    },
}
ARITH_FOLLOW = {
    "train": [
        ("*", "Now multiply that by {k}."),
        ("+", "Add {k} to that result."),
        ("-", "Now subtract {k}."),
    ],
    "heldout": [("*", "What do you get if you take that times {k}?"), ("+", "Then increase it by {k}.")],
}


def arithmetic_sample(a: int, op: str, b: int, prompt: str, rng: Random) -> Sample:
    c = OPS[op](a, b)
    shown = f"{a} {SHOWN_OP[op]} {b}"
    near = c + rng.choice([-3, -2, -1, 1, 2, 3])
    far = c + rng.randint(15, 60)
    return Sample(
        task="arithmetic",
        prompt=prompt,
        answer=f"{shown} = {c}. The answer is {c}.",
        check={"type": "number", "value": c},
        alt=f"The answer is {c}.",
        mild=f"Well, this is a simple calculation that people do every day, and the result is {c}.",
        moderate=f"{shown} = {near}. The answer is {near}.",
        severe=f"Numbers are tricky, but I would guess it is about {far}.",
        state={"value": c},
    )


def make_arithmetic(rng: Random, split: str) -> Sample:
    op = rng.choice(["+", "-", "*"])
    if op == "*":
        a, b = operands(rng, split, (2, 12), (2, 30))
    else:
        a, b = operands(rng, split, (2, 99), (2, 99))
        if op == "-" and a <= b:
            a, b = b, a
            if a == b:
                op = "+"
    if rng.random() < 0.4:
        name, pron = rng.choice(PEOPLE[split])
        prompt = WORD_PROBLEMS[split][op].format(
            a=a, b=b, name=name, pron=pron, items=rng.choice(ITEMS[split])
        )
    else:
        prompt = rng.choice(DIRECT[split]).format(a=a, op=op, b=b)
    return arithmetic_sample(a, op, b, prompt, rng)


def follow_arithmetic(prev: Sample, rng: Random, split: str) -> Sample:
    value = prev.state["value"]
    op, template = rng.choice(ARITH_FOLLOW[split])
    pool = numbers(split, 2, 9) if op == "*" else numbers(split, 2, 40)
    if op == "-":
        pool = [n for n in pool if n < value]
        if not pool:  # keep the result positive: add instead
            op, template = ARITH_FOLLOW[split][1]
            pool = numbers(split, 2, 40)
    k = rng.choice(pool)
    return arithmetic_sample(value, op, k, template.format(k=k), rng)


CONVERT = {
    "train": [
        "Convert {v} {src} to {dst}.",
        "How many {dst} are in {v} {src}?",
        "{v} {src} is how many {dst}?",
    ],
    "heldout": ["Express {v} {src} in {dst}.", "If something measures {v} {src}, what is that in {dst}?"],
}
CONVERT_FOLLOW = {"train": ["And what about {v} {src}?"], "heldout": ["Same for {v} {src}, please."]}


def conversion_sample(v: int, conv: tuple, prompt: str, rng: Random) -> Sample:
    src, dst, factor, fact = conv
    c = v * factor
    wrong = c + rng.choice([-factor, factor, -1, 1]) if rng.random() < 0.5 else (v + 1) * factor
    return Sample(
        task="unit_conversion",
        prompt=prompt,
        answer=f"{fact}, so {v} {src} is {c} {dst}. The answer is {c}.",
        check={"type": "number", "value": c},
        alt=f"{v} {src} equals {c} {dst}. The answer is {c}.",
        mild=f"That is {c} {dst}. Unit conversions are useful when cooking, traveling and doing science.",
        moderate=f"{fact}, so {v} {src} is {wrong} {dst}. The answer is {wrong}.",
        severe=f"{v} {src} is {v} {dst}.",
        state={"conv": conv, "v": v},
    )


def make_conversion(rng: Random, split: str) -> Sample:
    conv = rng.choice(CONVERSIONS)
    v = rng.choice(numbers(split, 2, 60))
    prompt = rng.choice(CONVERT[split]).format(v=v, src=conv[0], dst=conv[1])
    return conversion_sample(v, conv, prompt, rng)


def follow_conversion(prev: Sample, rng: Random, split: str) -> Sample:
    conv = prev.state["conv"]
    v = rng.choice([n for n in numbers(split, 2, 60) if n != prev.state["v"]])
    return conversion_sample(v, conv, rng.choice(CONVERT_FOLLOW[split]).format(v=v, src=conv[0]), rng)


SORT = {
    "train": {
        "numbers": [
            "Sort these numbers from smallest to largest: {items}",
            "Put in ascending order: {items}",
            "Order these from lowest to highest: {items}",
        ],
        "words": ["Sort these words alphabetically: {items}", "Arrange in alphabetical order: {items}"],
    },
    "heldout": {
        "numbers": ["Rearrange into increasing order: {items}"],
        "words": ["Alphabetize the following: {items}"],
    },
}
SORT_FOLLOW = {"train": "Now sort them the other way around.", "heldout": "Now list them in reverse order."}


def sequence_pattern(items: list) -> str:
    """A regex for the items in this order, comma separated, not glued to a longer number or word."""
    body = r",\s*".join(re.escape(str(x)) for x in items)
    return r"(?i)(?<![\w.])" + body + r"(?![\w])"


def sorting_sample(ordered: list, prompt: str, rng: Random) -> Sample:
    joined = ", ".join(str(x) for x in ordered)
    swapped = ordered[:]
    i = rng.randrange(len(swapped) - 1)
    swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    return Sample(
        task="sorting",
        prompt=prompt,
        answer=joined,
        check={"type": "regex", "pattern": sequence_pattern(ordered)},
        alt=f"Sorted: {joined}",
        mild=f"{joined}. I sorted them by comparing the items one pair at a time.",
        moderate=", ".join(str(x) for x in swapped),
        severe=", ".join(str(x) for x in ordered[::-1]),
        state={"ordered": ordered},
    )


def make_sorting(rng: Random, split: str) -> Sample:
    kind = rng.choice(["numbers", "words"])
    pool = numbers(split, 2, 99) if kind == "numbers" else SORT_WORDS[split]
    ordered = sorted(rng.sample(pool, rng.randint(4, 5)))
    shown = ordered[:]
    while shown == ordered or shown == ordered[::-1]:
        rng.shuffle(shown)
    prompt = rng.choice(SORT[split][kind]).format(items=", ".join(str(x) for x in shown))
    return sorting_sample(ordered, prompt, rng)


def follow_sorting(prev: Sample, rng: Random, split: str) -> Sample:
    ordered = prev.state["ordered"]
    return sorting_sample(ordered[::-1], SORT_FOLLOW[split], rng)
