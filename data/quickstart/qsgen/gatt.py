"""Ghost Attention material: constraint lists (hobby, language, public figure, length, format) and
multi-turn user-only dialogues of everyday questions (6 to 20 user turns)."""

from __future__ import annotations

from random import Random

HOBBIES = [
    "tennis",
    "chess",
    "gardening",
    "painting",
    "hiking",
    "cooking",
    "photography",
    "knitting",
    "fishing",
    "cycling",
    "birdwatching",
    "playing the guitar",
    "baking",
    "swimming",
    "astronomy",
    "pottery",
    "skiing",
    "reading mystery novels",
    "surfing",
    "woodworking",
]
# Languages langdetect identifies reliably, with its codes, so adherence can be checked by a rule.
LANGUAGES = [
    ("French", "fr"),
    ("Spanish", "es"),
    ("German", "de"),
    ("Italian", "it"),
    ("Portuguese", "pt"),
    ("English", "en"),
]
PUBLIC_FIGURES = [
    "Napoleon Bonaparte",
    "Cleopatra",
    "Albert Einstein",
    "Marie Curie",
    "William Shakespeare",
    "Leonardo da Vinci",
    "Abraham Lincoln",
    "Isaac Newton",
    "Wolfgang Amadeus Mozart",
    "Julius Caesar",
    "Queen Victoria",
    "Charles Darwin",
    "Ada Lovelace",
    "Galileo Galilei",
    "Frida Kahlo",
]


def constraints() -> dict:
    """The content of gatt_constraints.yaml."""
    return {
        "hobbies": HOBBIES,
        "languages": [{"name": name, "code": code} for name, code in LANGUAGES],
        "public_figures": PUBLIC_FIGURES,
        "instructions": {
            "hobby": {"full": "You enjoy {hobby}.", "terse": "Hobby: {hobby}"},
            "language": {"full": "Always answer in {language}.", "terse": "Language: {language}"},
            "public_figure": {"full": "Act as {figure}.", "terse": "Figure: {figure}"},
        },
        "answer_length": {
            "full": "Answer in at most {n} words.",
            "terse": "Length: at most {n} words",
            # At most 20 words (~27 tokens): the quickstart caps answers at 32 new tokens, and a cut answer
            # fails the length rule (its full length is unknown), so a 30-word limit could not be kept.
            "values": [10, 15, 20],
            "check": "max_words",
        },
        "format": {
            "full": "Always answer in uppercase.",
            "terse": "Format: uppercase",
            "check": "uppercase",
        },
    }


# Everyday questions: templates x values, plus fixed ones. Train and held-out pools share no template.
QUESTION_TEMPLATES = {
    "train": [
        (
            "What's a good recipe for {x}?",
            ["pancakes", "lentil soup", "fried rice", "banana bread", "a salad"],
        ),
        ("Can you suggest a name for my new {x}?", ["puppy", "kitten", "goldfish", "bike", "plant"]),
        (
            "What should I pack for a weekend trip to {x}?",
            ["the beach", "the mountains", "a big city", "a lake"],
        ),
        ("How do I start learning {x}?", ["to draw", "a new language", "to code", "to juggle", "to sing"]),
        ("Can you recommend a {x} movie?", ["funny", "relaxing", "family", "space", "mystery"]),
        ("How do I keep my {x} healthy?", ["basil plant", "cactus", "orchid", "lawn"]),
        ("What is a good gift for my {x}?", ["grandmother", "best friend", "coworker", "brother"]),
        ("What's a fun thing to do on a rainy {x}?", ["Sunday", "afternoon", "evening"]),
    ],
    "heldout": [
        ("Any tips for making better {x}?", ["coffee", "omelettes", "sandwiches", "smoothies"]),
        ("How can I get better at {x}?", ["public speaking", "remembering names", "typing", "saving money"]),
        ("What's interesting about {x}?", ["penguins", "the moon", "volcanoes", "honeybees"]),
        ("How should I plan a {x}?", ["picnic", "birthday party", "road trip", "game night"]),
    ],
}
FIXED_QUESTIONS = {
    "train": [
        "How can I sleep better?",
        "What's your favorite season and why?",
        "How do I make my mornings less rushed?",
        "What can I do to drink more water?",
        "How do I clean a cast iron pan?",
        "Why is the sky blue?",
        "How many hours of sleep do adults need?",
        "What's a good way to stay focused while studying?",
        "How do I fold a fitted sheet?",
        "What are some easy houseplants for beginners?",
        "How can I make new friends in a new city?",
        "What should I cook when I have no time?",
        "How do I keep my desk tidy?",
        "What is a healthy breakfast?",
        "How do I start running?",
        "Why do cats purr?",
        "How can I save energy at home?",
        "What's a good book for a long flight?",
        "How do I write a thank-you note?",
        "What is the tallest mountain in the world?",
    ],
    "heldout": [
        "How do I get rid of hiccups?",
        "What makes a good morning routine?",
        "Why do leaves change color?",
        "How do I pick a ripe avocado?",
        "What is a good stretch after sitting all day?",
        "How can I make my phone battery last longer?",
        "Why do we dream?",
        "How do I remove a coffee stain?",
        "What should I do on a long train ride?",
        "How do I learn to whistle?",
    ],
}


def question_pool(split: str) -> list[str]:
    pool = [t.format(x=x) for t, xs in QUESTION_TEMPLATES[split] for x in xs]
    return pool + FIXED_QUESTIONS[split]


def dialogues(rng: Random, split: str, n: int, id_prefix: str, full_length_share: float) -> list[dict]:
    """User-only dialogues of 6 to 20 turns (a share of them 20 turns long, for turn-20 adherence)."""
    pool = question_pool(split)
    rows = []
    for i in range(n):
        length = 20 if rng.random() < full_length_share else rng.randint(6, 20)
        rows.append(
            {"id": f"{id_prefix}-{i + 1:04d}", "user_turns": rng.sample(pool, min(length, len(pool)))}
        )
    return rows
