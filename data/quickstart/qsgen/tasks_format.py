"""Format-following tasks: exactly K bullet points, JSON with given keys, word limits, upper/lower case."""

from __future__ import annotations

import json
from random import Random

from qsgen.pools import (
    BULLET_CATEGORIES,
    CASE_PHRASES,
    CITIES,
    COMPANIES,
    COUNTRY_OF,
    DEFINITIONS,
    ITEMS,
    JOBS,
    PEOPLE,
    PETS,
    PRODUCTS,
    numbers,
)
from qsgen.sample import Sample, article, pad_past

BULLETS = {
    "train": [
        "List {k} {cat} as exactly {k} bullet points.",
        "Name {k} {cat}. Use exactly {k} bullet points.",
        "Write a bulleted list of {k} {cat}, no more and no less.",
    ],
    "heldout": [
        "I need {k} {cat} in a list of exactly {k} bullets.",
        "Answer with exactly {k} bullet points: name some {cat}.",
    ],
}
BULLET_COUNTS = {"train": [2, 3, 4, 5], "heldout": [3, 4, 5, 6]}
BULLETS_FOLLOW = {
    "train": "Now give me {k} different {cat} in exactly {k} bullet points.",
    "heldout": "Do it again with {k} other {cat}, exactly {k} bullets.",
}


def bullets_sample(cat: str, chosen: list[str], prompt: str, rng: Random) -> Sample:
    k = len(chosen)
    pool = BULLET_CATEGORIES["train"].get(cat) or BULLET_CATEGORIES["heldout"][cat]
    spare = [x for x in pool if x not in chosen]
    off = chosen + [spare[0]] if (k < 3 or rng.random() < 0.5) else chosen[:-1]
    return Sample(
        task="bullets",
        prompt=prompt,
        answer="\n".join(f"- {x}" for x in chosen),
        check={"type": "bullets", "count": k},
        alt="\n".join(f"* {x}" for x in chosen),
        mild="\n".join(f"- {x}" for x in chosen)
        + "\nI hope this list is useful for whatever you are working on!",
        moderate="\n".join(f"- {x}" for x in off),
        severe=f"Some {cat} are " + ", ".join(chosen[:-1]) + f" and {chosen[-1]}.",
        state={"cat": cat, "used": chosen},
    )


def make_bullets(rng: Random, split: str) -> Sample:
    cat = rng.choice(sorted(BULLET_CATEGORIES[split]))
    k = rng.choice(BULLET_COUNTS[split])
    chosen = rng.sample(BULLET_CATEGORIES[split][cat], k)
    return bullets_sample(cat, chosen, rng.choice(BULLETS[split]).format(k=k, cat=cat), rng)


def follow_bullets(prev: Sample, rng: Random, split: str) -> Sample:
    cat, used = prev.state["cat"], prev.state["used"]
    rest = [x for x in BULLET_CATEGORIES[split][cat] if x not in used]
    k = rng.choice([n for n in BULLET_COUNTS[split] if n <= len(rest) - 1] or [2])
    return bullets_sample(cat, rng.sample(rest, k), BULLETS_FOLLOW[split].format(k=k, cat=cat), rng)


JSON_TEMPLATES = {
    "train": [
        'Reply in JSON with keys "{k1}" and "{k2}". {fact}',
        'Return a JSON object with the keys "{k1}" and "{k2}" for this: {fact}',
        '{fact} Give that as JSON using the keys "{k1}" and "{k2}".',
    ],
    "heldout": [
        'Format this as JSON (keys: "{k1}", "{k2}"): {fact}',
        'Using only a JSON object with fields "{k1}" and "{k2}", describe: {fact}',
    ],
}
KEY_SYNONYM = {
    "name": "full_name",
    "age": "years",
    "city": "town",
    "country": "nation",
    "product": "item_name",
    "price": "cost",
    "item": "thing",
    "count": "amount",
    "person": "who",
    "job": "occupation",
    "company": "firm",
    "founded": "year",
    "pet": "animal",
    "number": "how_many",
}


def _json_fact(rng: Random, split: str) -> tuple[str, dict]:
    name, _ = rng.choice(PEOPLE[split])
    if split == "train":
        kind = rng.choice(["person", "place", "product", "owned"])
        if kind == "person":
            age = rng.choice(numbers(split, 18, 80))
            return f"{name} is {age} years old.", {"name": name, "age": age}
        if kind == "place":
            city = rng.choice(CITIES[split])
            return f"{city} is a city in {COUNTRY_OF[city]}.", {"city": city, "country": COUNTRY_OF[city]}
        if kind == "product":
            product, price = rng.choice(PRODUCTS[split]), rng.choice(numbers(split, 5, 200))
            return f"The {product} costs {price} dollars.", {"product": product, "price": price}
        items, n = rng.choice(ITEMS[split]), rng.choice(numbers(split, 2, 40))
        return f"{name} owns {n} {items}.", {"item": items, "count": n}
    kind = rng.choice(["job", "company", "pet"])
    if kind == "job":
        job = rng.choice(JOBS[split])
        return f"{name} works as {article(job)} {job}.", {"person": name, "job": job}
    if kind == "company":
        company, year = rng.choice(COMPANIES[split]), rng.choice(numbers(split, 1950, 2020))
        return f"{company} was founded in {year}.", {"company": company, "founded": year}
    pets, n = rng.choice(PETS[split]), rng.choice(numbers(split, 2, 12))
    return f"{name} has {n} {pets}.", {"pet": pets, "number": n}


def make_json(rng: Random, split: str) -> Sample:
    fact, obj = _json_fact(rng, split)
    k1, k2 = list(obj)
    prompt = rng.choice(JSON_TEMPLATES[split]).format(k1=k1, k2=k2, fact=fact)
    if rng.random() < 0.5:
        broken = {KEY_SYNONYM[k1]: obj[k1], k2: obj[k2]}
    else:
        broken = {k1: obj[k1]}
    return Sample(
        task="json",
        prompt=prompt,
        answer=json.dumps(obj, ensure_ascii=False),
        check={"type": "json_keys", "keys": [k1, k2]},
        alt=json.dumps({k2: obj[k2], k1: obj[k1]}, ensure_ascii=False),
        mild=f"Here is the JSON you asked for: {json.dumps(obj, ensure_ascii=False)}",
        moderate=json.dumps(broken, ensure_ascii=False),
        severe=fact,
    )


WORD_LIMIT = {
    "train": [
        "In at most {n} words, what is {art} {thing}?",
        "Explain what {art} {thing} is in {n} words or fewer.",
        "Define {thing} using no more than {n} words.",
    ],
    "heldout": [
        "Using {n} words at most, tell me what {art} {thing} is.",
        "Describe {art} {thing} briefly (maximum {n} words).",
    ],
}
WORD_LIMITS = {"train": [12, 15, 20, 25], "heldout": [11, 13, 14, 18]}
WORD_FOLLOW = {
    "train": "Now explain {art} {thing} the same way.",
    "heldout": "Do the same for {art} {thing}.",
}


def word_limit_sample(thing: str, n: int, prompt: str, split: str, rng: Random) -> Sample:
    definition = DEFINITIONS[split][thing]
    simply = "Simply put, " + definition[0].lower() + definition[1:]
    return Sample(
        task="word_limit",
        prompt=prompt,
        answer=definition,
        check={"type": "max_words", "value": n},
        alt=simply,
        mild=f"{article(thing).capitalize()} {thing} is a common and useful thing.",
        moderate=pad_past(definition, n, rng, extra=0),
        severe=pad_past("Well, that is a big topic. " + definition, n, rng, extra=25),
        state={"n": n, "thing": thing},
    )


def _limit_for(thing: str, split: str, rng: Random) -> int:
    # Leave room for the "Simply put," alternative (two more words) within the limit.
    need = len(DEFINITIONS[split][thing].split()) + 2
    return rng.choice([n for n in WORD_LIMITS[split] if n >= need])


def make_word_limit(rng: Random, split: str) -> Sample:
    thing = rng.choice(sorted(DEFINITIONS[split]))
    n = _limit_for(thing, split, rng)
    prompt = rng.choice(WORD_LIMIT[split]).format(n=n, art=article(thing), thing=thing)
    return word_limit_sample(thing, n, prompt, split, rng)


def follow_word_limit(prev: Sample, rng: Random, split: str) -> Sample:
    n = prev.state["n"]
    fits = [t for t in sorted(DEFINITIONS[split]) if len(DEFINITIONS[split][t].split()) + 2 <= n]
    thing = rng.choice([t for t in fits if t != prev.state["thing"]])
    return word_limit_sample(thing, n, WORD_FOLLOW[split].format(art=article(thing), thing=thing), split, rng)


CASE = {
    "train": {
        "upper": [
            "Convert to uppercase: {text}",
            "Rewrite this in capital letters: {text}",
            'Make every letter uppercase: "{text}"',
        ],
        "lower": ["Convert to lowercase: {text}", "Rewrite this using only small letters: {text}"],
    },
    "heldout": {
        "upper": ["Please shout this (all caps): {text}", "Change the following text to upper case: {text}"],
        "lower": ["Put this in lower case: {text}"],
    },
}
CASE_FOLLOW = {
    "train": {
        "upper": "Now write the same text in uppercase.",
        "lower": "Now write the same text in lowercase.",
    },
    "heldout": {"upper": "And now in capitals, please.", "lower": "And now all lowercase, please."},
}


def case_sample(phrase: str, target: str, prompt: str, rng: Random) -> Sample:
    words = phrase.split()
    i = rng.randrange(len(words))
    if target == "upper":
        out = phrase.upper()
        near = " ".join(w if j == i else w.upper() for j, w in enumerate(words))
        unchanged = phrase
    else:
        out = phrase.lower()
        near = " ".join(w.capitalize() if j == i else w.lower() for j, w in enumerate(words))
        unchanged = phrase.title()
    check = {
        "type": "all",
        "checks": [
            {"type": "uppercase" if target == "upper" else "lowercase"},
            {"type": "contains", "value": out},
        ],
    }
    intro = "HERE IT IS: " if target == "upper" else "here it is: "
    return Sample(
        task="case",
        prompt=prompt,
        answer=out,
        check=check,
        alt=out + ".",
        mild=intro + out,
        moderate=near,
        severe=unchanged,
        state={"phrase": phrase, "target": target},
    )


def make_case(rng: Random, split: str) -> Sample:
    phrase = rng.choice(CASE_PHRASES[split])
    target = rng.choice(["upper", "lower"])
    shown = phrase if target == "upper" else rng.choice([phrase.title(), phrase.upper()])
    return case_sample(phrase, target, rng.choice(CASE[split][target]).format(text=shown), rng)


def follow_case(prev: Sample, rng: Random, split: str) -> Sample:
    target = "lower" if prev.state["target"] == "upper" else "upper"
    return case_sample(prev.state["phrase"], target, CASE_FOLLOW[split][target], rng)
