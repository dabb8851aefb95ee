"""Values the task templates draw from, each pool split into a train part and a held-out part.

Numbers are split by residue (n % 5 == 3 is held out), named entities by disjoint lists, so that a held-out
prompt never shows a value combination seen in training.
"""

from __future__ import annotations

from random import Random

SPLITS = ("train", "heldout")


def is_heldout_number(n: int) -> bool:
    return n % 5 == 3


def numbers(split: str, lo: int, hi: int) -> list[int]:
    """The integers in [lo, hi] that belong to `split`."""
    return [n for n in range(lo, hi + 1) if is_heldout_number(n) == (split == "heldout")]


def operands(rng: Random, split: str, lo_hi_a: tuple[int, int], lo_hi_b: tuple[int, int]) -> tuple[int, int]:
    """Two operands: both from the train pool for train; at least one from the held-out pool for held-out."""
    if split == "train":
        return rng.choice(numbers("train", *lo_hi_a)), rng.choice(numbers("train", *lo_hi_b))
    a, b = rng.choice(numbers("heldout", *lo_hi_a)), rng.choice(range(lo_hi_b[0], lo_hi_b[1] + 1))
    if rng.random() < 0.5:
        a, b = rng.choice(range(lo_hi_a[0], lo_hi_a[1] + 1)), rng.choice(numbers("heldout", *lo_hi_b))
    return a, b


PEOPLE = {
    "train": [
        ("Anna", "she"),
        ("Ben", "he"),
        ("Carla", "she"),
        ("David", "he"),
        ("Elena", "she"),
        ("Farid", "he"),
        ("Grace", "she"),
        ("Hugo", "he"),
        ("Isla", "she"),
        ("Jonas", "he"),
        ("Keiko", "she"),
        ("Liam", "he"),
        ("Maya", "she"),
        ("Noah", "he"),
        ("Olivia", "she"),
        ("Pavel", "he"),
        ("Rosa", "she"),
        ("Samir", "he"),
    ],
    "heldout": [
        ("Tara", "she"),
        ("Umar", "he"),
        ("Vera", "she"),
        ("Walter", "he"),
        ("Yara", "she"),
        ("Zane", "he"),
        ("Nadia", "she"),
        ("Oscar", "he"),
    ],
}

CITIES = {
    "train": [
        "Lyon",
        "Porto",
        "Oslo",
        "Dublin",
        "Krakow",
        "Seville",
        "Munich",
        "Toronto",
        "Kyoto",
        "Nairobi",
        "Lima",
        "Perth",
        "Bergen",
        "Turin",
    ],
    "heldout": ["Valencia", "Helsinki", "Osaka", "Quito", "Adelaide", "Ghent", "Tallinn"],
}

JOBS = {
    "train": ["nurse", "carpenter", "teacher", "baker", "pilot", "librarian", "chemist", "gardener"],
    "heldout": ["architect", "plumber", "journalist", "dentist"],
}

PETS = {"train": ["cats", "dogs", "rabbits", "goldfish"], "heldout": ["parrots", "turtles", "hamsters"]}

COMPANIES = {
    "train": ["Nordwind", "Bluepeak", "Solaris Labs", "Greenfield", "Orbitex", "Maplewood"],
    "heldout": ["Crestline", "Vantor", "Silverbay", "Quillon"],
}

PRODUCTS = {
    "train": ["electric kettle", "desk lamp", "backpack", "phone case", "blender", "rain jacket"],
    "heldout": ["coffee grinder", "bike helmet", "laptop stand", "water filter"],
}

MONTHS = {
    "train": ["January", "February", "March", "April", "May", "June", "July", "August"],
    "heldout": ["September", "October", "November", "December"],
}

# Items someone counts in an arithmetic word problem.
ITEMS = {
    "train": ["apples", "marbles", "stickers", "books", "pencils", "cookies", "stamps", "coins"],
    "heldout": ["oranges", "seashells", "candles", "postcards", "buttons"],
}

BULLET_CATEGORIES = {
    "train": {
        "fruits": ["apple", "banana", "cherry", "mango", "pear", "grape", "peach", "plum"],
        "animals": ["dog", "cat", "horse", "rabbit", "lion", "elephant", "zebra", "wolf"],
        "colors": ["red", "blue", "green", "yellow", "purple", "orange", "pink", "brown"],
        "sports": ["soccer", "tennis", "basketball", "swimming", "cycling", "golf", "rugby", "volleyball"],
        "European countries": [
            "France",
            "Spain",
            "Italy",
            "Germany",
            "Portugal",
            "Norway",
            "Poland",
            "Greece",
        ],
        "planets": ["Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune"],
        "kitchen tools": ["knife", "whisk", "ladle", "spatula", "grater", "peeler", "colander", "tongs"],
    },
    "heldout": {
        "vegetables": ["carrot", "broccoli", "spinach", "onion", "potato", "pepper", "cabbage", "leek"],
        "musical instruments": ["piano", "violin", "guitar", "flute", "drums", "cello", "trumpet", "harp"],
        "birds": ["robin", "eagle", "sparrow", "owl", "parrot", "swan", "crow", "pelican"],
        "school subjects": [
            "math",
            "history",
            "biology",
            "chemistry",
            "art",
            "music",
            "geography",
            "physics",
        ],
    },
}

# Things with a short definition (at most 9 words) for the word-limit task.
DEFINITIONS = {
    "train": {
        "bicycle": "A bicycle is a two-wheeled vehicle moved by pedals.",
        "library": "A library is a place where people borrow books.",
        "volcano": "A volcano is a mountain that can erupt with lava.",
        "thermometer": "A thermometer is a tool that measures temperature.",
        "glacier": "A glacier is a slow-moving river of ice.",
        "calendar": "A calendar is a chart of days, weeks and months.",
        "umbrella": "An umbrella is a folding canopy that keeps off rain.",
        "passport": "A passport is an official document for international travel.",
        "bakery": "A bakery is a shop that makes and sells bread.",
        "compass": "A compass is a tool that shows which way is north.",
        "island": "An island is land surrounded on all sides by water.",
        "recipe": "A recipe is a set of instructions for cooking a dish.",
        "orchestra": "An orchestra is a large group of musicians playing together.",
        "battery": "A battery is a device that stores electrical energy.",
        "desert": "A desert is a very dry area with little rain.",
        "dictionary": "A dictionary is a book that explains the meanings of words.",
        "telescope": "A telescope is an instrument for seeing distant objects.",
        "harbor": "A harbor is a sheltered place where ships can dock.",
        "vaccine": "A vaccine trains the body to fight a disease.",
        "spreadsheet": "A spreadsheet is a grid of cells for organizing data.",
    },
    "heldout": {
        "microscope": "A microscope is an instrument that magnifies very small things.",
        "lighthouse": "A lighthouse is a tower whose light guides ships.",
        "museum": "A museum is a building that displays art or history.",
        "canal": "A canal is a man-made waterway for boats.",
        "helmet": "A helmet is a hard hat that protects the head.",
        "rainbow": "A rainbow is an arc of colors in the sky.",
        "pharmacy": "A pharmacy is a shop that sells medicines.",
        "satellite": "A satellite is an object that orbits a planet.",
        "bridge": "A bridge is a structure built to cross a gap.",
        "keyboard": "A keyboard is a set of keys for typing.",
    },
}

CASE_PHRASES = {
    "train": [
        "the quick brown fox",
        "good morning everyone",
        "see you at noon",
        "please close the door",
        "the train leaves at five",
        "happy birthday to you",
        "keep calm and carry on",
        "water boils at one hundred",
        "my favorite color is green",
        "turn left at the bakery",
        "the meeting starts soon",
        "bring an umbrella today",
        "cats like warm places",
        "read the first chapter",
        "the store opens at nine",
        "thank you for your help",
        "lunch is ready now",
        "the river is very wide",
        "call me tomorrow morning",
        "dinner is at seven",
    ],
    "heldout": [
        "the garden needs water",
        "our flight was delayed",
        "the library is quiet",
        "bake the bread for an hour",
        "the concert was wonderful",
        "send the report by friday",
        "wear a warm coat outside",
        "the puppy fell asleep",
        "check the oil before driving",
        "the museum closes early",
    ],
}

SORT_WORDS = {
    "train": [
        "pear",
        "apple",
        "kiwi",
        "melon",
        "banana",
        "cherry",
        "grape",
        "lemon",
        "olive",
        "peach",
        "date",
        "fig",
        "mango",
        "plum",
    ],
    "heldout": ["zebra", "otter", "badger", "camel", "walrus", "heron", "lynx", "moose", "yak", "gecko"],
}

# Unit conversions with an exact integer factor: (from unit, plural target unit, factor, fact sentence).
CONVERSIONS = [
    ("km", "meters", 1000, "There are 1000 meters in a kilometer"),
    ("kg", "grams", 1000, "There are 1000 grams in a kilogram"),
    ("hours", "minutes", 60, "There are 60 minutes in an hour"),
    ("minutes", "seconds", 60, "There are 60 seconds in a minute"),
    ("meters", "centimeters", 100, "There are 100 centimeters in a meter"),
    ("days", "hours", 24, "There are 24 hours in a day"),
    ("weeks", "days", 7, "There are 7 days in a week"),
    ("liters", "milliliters", 1000, "There are 1000 milliliters in a liter"),
]

COUNTRY_OF = {
    "Lyon": "France",
    "Porto": "Portugal",
    "Oslo": "Norway",
    "Dublin": "Ireland",
    "Krakow": "Poland",
    "Seville": "Spain",
    "Munich": "Germany",
    "Toronto": "Canada",
    "Kyoto": "Japan",
    "Nairobi": "Kenya",
    "Lima": "Peru",
    "Perth": "Australia",
    "Bergen": "Norway",
    "Turin": "Italy",
    "Valencia": "Spain",
    "Helsinki": "Finland",
    "Osaka": "Japan",
    "Quito": "Ecuador",
    "Adelaide": "Australia",
    "Ghent": "Belgium",
    "Tallinn": "Estonia",
}
