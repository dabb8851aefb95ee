"""Ghost Attention material: instruction kinds with their wordings and values (gatt_constraints.yaml) and
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
# Languages langdetect identifies reliably, with its codes, so adherence can be checked by a rule. Dutch and
# Swedish are left out on purpose: data/independent evaluates GAtt on them as languages never trained.
LANGUAGES = [
    ("French", "fr"),
    ("Spanish", "es"),
    ("German", "de"),
    ("Italian", "it"),
    ("Portuguese", "pt"),
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
START_PHRASES = ["Sure thing!", "Great question!", "Hello friend!", "Alright,", "Happy to help!", "Here goes:"]
SIGN_OFFS = ["Hope this helps!", "Have a great day!", "Cheers, Sam.", "Good luck!", "Take care!",
             "That is all."]
KEYWORDS = ["banana", "rainbow", "ocean", "music", "sunshine", "lantern", "pebble"]
NAMES = ["Max", "Luna", "Oliver", "Aria", "Leo", "Nora", "Felix"]
EMOJIS = ["\U0001F60A", "\U0001F31F", "\U0001F44D", "\U0001F389", "\U0001F331", "\u2600\ufe0f"]

# Instruction kinds: several full and terse wordings each ("{value}" is the drawn value). Only the kinds of
# data/independent's held-out set (lowercase, ending with a question, quoted replies, one sentence, Dutch and
# Swedish) are absent, so GAtt is evaluated on kinds it never trained.
WORDINGS = {
    "language": (["Always answer in {value}.", "Reply only in {value}, whatever language I use.",
                  "Speak {value} in all your answers."],
                 ["Language: {value}", "In {value}"]),
    "start_phrase": (['Begin every reply with "{value}".', 'Start each answer with the words "{value}".'],
                     ['Start with: "{value}"', 'Opening: "{value}"']),
    "sign_off": (['End every reply with "{value}".', 'Finish each answer with the words "{value}".'],
                 ['Sign-off: "{value}"', 'Close with: "{value}"']),
    "include_keyword": (['Mention the word "{value}" in every reply.',
                         'Use the word "{value}" somewhere in each answer.'],
                        ["Keyword: {value}", "Must mention: {value}"]),
    "uppercase": (["Always answer in uppercase.", "Write your replies in capital letters only."],
                  ["Format: uppercase", "ALL CAPS"]),
    "word_limit": (["Answer in at most {value} words.", "Keep every reply under {value} words."],
                   ["Length: at most {value} words", "Max {value} words"]),
    "bullets": (["Answer as a bulleted list.", 'Format every reply as bullet points, one per line, each '
                 'starting with "- ".'],
                ["Format: bullet points", "Bullets only"]),
    "numbered_list": (["Answer as a numbered list.", "Give every reply as numbered steps: 1., 2., 3."],
                      ["Format: numbered list", "Numbered steps"]),
    "json": (['Reply only with a JSON object, like {"answer": "..."}.', "Format every answer as valid JSON."],
             ["Format: JSON", "Output: JSON object"]),
    "persona_name": (["You are {value}; say your name in every reply.",
                      "Your name is {value}. Always mention who you are when you answer."],
                     ["Name: {value}", "You are {value}"]),
    "emoji": (["Start every reply with an emoji.", "Begin each answer with an emoji such as {value}."],
              ["Start with an emoji", "Emoji first"]),
    "hobby": (["You enjoy {value}.", "Your favourite pastime is {value}; bring it up when you answer."],
              ["Hobby: {value}"]),
    "public_figure": (["Act as {value}.", "Answer as if you were {value}."], ["Figure: {value}"]),
}
VALUES = {
    "language": [{"name": name, "code": code} for name, code in LANGUAGES],
    "start_phrase": START_PHRASES,
    "sign_off": SIGN_OFFS,
    "include_keyword": KEYWORDS,
    # At most 20 words (~27 tokens): the quickstart caps answers at 32 new tokens, and a cut answer fails the
    # limit (its full length is unknown), so a 30-word limit could not be kept.
    "word_limit": [10, 15, 20],
    "persona_name": NAMES,
    "emoji": EMOJIS,
    "hobby": HOBBIES,
    "public_figure": PUBLIC_FIGURES,
}


def constraints() -> dict:
    """The content of gatt_constraints.yaml."""
    kinds = {}
    for kind, (full, terse) in WORDINGS.items():
        kinds[kind] = {"full": full, "terse": terse}
        if kind in VALUES:
            kinds[kind]["values"] = VALUES[kind]
    return {"kinds": kinds}


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
        "How do I clean a wooden cutting board?",
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
        "Why do dogs tilt their heads?",
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
