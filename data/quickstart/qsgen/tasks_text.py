"""Text tasks: extraction from a given passage (copy a name, date or number) and short, safe chit-chat."""

from __future__ import annotations

import re
from random import Random

from qsgen.pools import CITIES, COMPANIES, JOBS, MONTHS, PEOPLE, PETS, PRODUCTS, numbers
from qsgen.sample import Sample, article, pad_past

# Each passage: text template, and questions as (question, answer template, field checked, check kind).
PASSAGES = {
    "train": [
        (
            "{name} was born in {city} in {year}. Today {pron} works as {art_job} {job} and has {n} {pets}.",
            [
                ("Where was {name} born?", "{name} was born in {city}.", "city", "contains"),
                ("In which year was {name} born?", "{name} was born in {year}.", "year", "number"),
                ("How many {pets} does {name} have?", "{name} has {n} {pets}.", "n", "number"),
                ("What is {name}'s job?", "{name} works as {art_job} {job}.", "job", "contains"),
            ],
        ),
        (
            "The {company} annual meeting will take place in {city} on {month} {day}. About {n} people are "
            "expected to attend.",
            [
                (
                    "Where will the meeting take place?",
                    "The meeting will take place in {city}.",
                    "city",
                    "contains",
                ),
                ("On what date is the meeting?", "The meeting is on {month} {day}.", "date", "contains"),
                ("How many people are expected?", "About {n} people are expected.", "n", "number"),
                (
                    "Which company is holding the meeting?",
                    "{company} is holding the meeting.",
                    "company",
                    "contains",
                ),
            ],
        ),
        (
            "The {product} from {company} costs {price} dollars. It went on sale in {month} {year}.",
            [
                ("How much does the {product} cost?", "It costs {price} dollars.", "price", "number"),
                (
                    "Which company makes the {product}?",
                    "{company} makes the {product}.",
                    "company",
                    "contains",
                ),
                ("When did it go on sale?", "It went on sale in {month} {year}.", "month_year", "contains"),
            ],
        ),
    ],
    "heldout": [
        (
            "In {year}, {name} moved to {city} to work as {art_job} {job}. Now {pron} walks {n} minutes to work "
            "each day.",
            [
                ("Which city did {name} move to?", "{name} moved to {city}.", "city", "contains"),
                ("What year did the move happen?", "The move happened in {year}.", "year", "number"),
                ("How long is the walk to work, in minutes?", "The walk takes {n} minutes.", "n", "number"),
                ("What does {name} do for work?", "{name} works as {art_job} {job}.", "job", "contains"),
            ],
        ),
        (
            "{company} opened a new office in {city} on {month} {day}, {year}, and hired {n} employees there.",
            [
                ("Where is the new office?", "The new office is in {city}.", "city", "contains"),
                ("When did the office open?", "It opened on {month} {day}, {year}.", "full_date", "contains"),
                ("How many employees were hired?", "{company} hired {n} employees.", "n", "number"),
                ("Who opened the office?", "{company} opened the office.", "company", "contains"),
            ],
        ),
    ],
}
EXTRACT_FRAME = {
    "train": [
        "Read the passage and answer the question.\n\nPassage: {passage}\n\nQuestion: {question}",
        "{passage}\n\nBased only on the text above: {question}",
    ],
    "heldout": ["Text: {passage}\nUsing the text, answer: {question}"],
}
EXTRACT_FOLLOW = {"train": "One more question about the passage: {question}", "heldout": "Also: {question}"}


def _passage_values(rng: Random, split: str) -> dict:
    name, pron = rng.choice(PEOPLE[split])
    job = rng.choice(JOBS[split])
    v = {
        "name": name,
        "pron": pron,
        "city": rng.choice(CITIES[split]),
        "job": job,
        "art_job": article(job),
        "pets": rng.choice(PETS[split]),
        "company": rng.choice(COMPANIES[split]),
        "product": rng.choice(PRODUCTS[split]),
        "month": rng.choice(MONTHS[split]),
        "year": rng.choice(numbers(split, 1950, 2015)),
        "day": rng.choice(numbers(split, 2, 28)),
        "n": rng.choice(numbers(split, 2, 90)),
        "price": rng.choice(numbers(split, 10, 300)),
    }
    v["date"] = f"{v['month']} {v['day']}"
    v["month_year"] = f"{v['month']} {v['year']}"
    v["full_date"] = f"{v['month']} {v['day']}, {v['year']}"
    return v


def _wrong(values: dict, key: str, rng: Random, split: str) -> dict:
    """The same values with the asked-for field replaced by a plausible wrong one (a near miss)."""
    wrong = dict(values)
    if key in ("n", "price", "year"):
        wrong[key] = values[key] + rng.choice([-2, -1, 1, 2]) * (10 if key == "year" else 1)
    elif key == "city":
        wrong["city"] = rng.choice([c for c in CITIES[split] if c != values["city"]])
    elif key == "job":
        wrong["job"] = rng.choice([j for j in JOBS[split] if j != values["job"]])
        wrong["art_job"] = article(wrong["job"])
    elif key == "company":
        wrong["company"] = rng.choice([c for c in COMPANIES[split] if c != values["company"]])
    else:  # a date: another month
        wrong["month"] = rng.choice([m for m in MONTHS[split] if m != values["month"]])
    wrong["date"] = f"{wrong['month']} {wrong['day']}"
    wrong["month_year"] = f"{wrong['month']} {wrong['year']}"
    wrong["full_date"] = f"{wrong['month']} {wrong['day']}, {wrong['year']}"
    return wrong


def extraction_sample(
    values: dict, question: tuple, prompt: str, rng: Random, split: str, passage: tuple
) -> Sample:
    q, answer_t, key, kind = question
    answer = answer_t.format(**values)
    value = values[key]
    if kind == "number":
        check = {"type": "number", "value": value}
    elif any(ch.isdigit() for ch in value):  # a date: "March 2" must not pass on "March 23"
        check = {"type": "regex", "pattern": r"(?i)(?<!\w)" + re.escape(value) + r"(?!\w)"}
    else:
        check = {"type": "contains", "value": value}
    mild = "According to the passage, which I read carefully from start to finish: " + answer
    return Sample(
        task="extraction",
        prompt=prompt,
        answer=answer,
        check=check,
        alt=f"{value}.",
        mild=mild,
        moderate=answer_t.format(**_wrong(values, key, rng, split)),
        severe=rng.choice(["The passage does not say.", "I don't know, it isn't mentioned anywhere."]),
        state={"values": values, "passage": passage, "asked": q},
    )


def make_extraction(rng: Random, split: str) -> Sample:
    passage = rng.choice(PASSAGES[split])
    values = _passage_values(rng, split)
    question = rng.choice(passage[1])
    prompt = rng.choice(EXTRACT_FRAME[split]).format(
        passage=passage[0].format(**values), question=question[0].format(**values)
    )
    return extraction_sample(values, question, prompt, rng, split, passage)


def follow_extraction(prev: Sample, rng: Random, split: str) -> Sample:
    passage, values = prev.state["passage"], prev.state["values"]
    question = rng.choice([q for q in passage[1] if q[0] != prev.state["asked"]])
    prompt = EXTRACT_FOLLOW[split].format(question=question[0].format(**values))
    return extraction_sample(values, question, prompt, rng, split, passage)


# (prompt, answer, equally good alternative)
CHIT_CHAT = {
    "train": [
        ("Hi there!", "Hello! How can I help you today?", "Hi! What can I do for you?"),
        (
            "Good morning!",
            "Good morning! I hope your day is off to a great start. What can I do for you?",
            "Morning! How can I help you today?",
        ),
        (
            "Thank you, that was helpful.",
            "You're welcome! I'm glad it helped.",
            "Happy to help! Let me know if you need anything else.",
        ),
        (
            "How are you doing?",
            "I'm doing well, thanks for asking! How can I help you?",
            "Very well, thank you! What would you like to talk about?",
        ),
        (
            "Tell me a fun fact.",
            "Octopuses have three hearts and blue blood.",
            "A group of flamingos is called a flamboyance.",
        ),
        (
            "What's your name?",
            "I'm a helpful AI assistant. You can just call me Assistant.",
            "I'm an AI assistant without a personal name, but I'm happy to help.",
        ),
        (
            "Can you tell me a short joke?",
            "Why did the scarecrow win an award? Because he was outstanding in his field!",
            "Why don't eggs tell jokes? They would crack each other up.",
        ),
        (
            "I'm bored. Any ideas?",
            "You could take a short walk, try a new recipe, or start a book you've been meaning to read.",
            "How about a puzzle, a quick drawing, or calling a friend you haven't talked to in a while?",
        ),
        ("Goodbye!", "Goodbye! Have a wonderful day.", "Bye! Take care."),
        (
            "What can you do?",
            "I can answer questions, do quick math, convert units, make lists and JSON, and read short texts.",
            "I can help with questions, calculations, unit conversions, formatting and short summaries.",
        ),
        (
            "Say something nice.",
            "You're doing great, and it's kind of you to ask. I hope today treats you well.",
            "You matter, and your curiosity is a wonderful thing.",
        ),
        (
            "Do you like music?",
            "I don't listen to music myself, but I enjoy talking about it. What do you like to listen to?",
            "I can't hear it, but I know a lot about it. Which songs do you like?",
        ),
    ],
    "heldout": [
        (
            "Hey, what's up?",
            "Not much, just here to help! What's on your mind?",
            "All good here! What can I do for you?",
        ),
        ("Good evening!", "Good evening! How can I help you tonight?", "Evening! What can I do for you?"),
        (
            "Thanks a lot for your help!",
            "You're very welcome! Come back any time.",
            "My pleasure! Glad I could help.",
        ),
        (
            "Share an interesting fact, please.",
            "Honey never spoils: edible honey has been found in ancient Egyptian tombs.",
            "Bananas are berries, but strawberries are not.",
        ),
        (
            "Can you cheer me up?",
            "Of course! You've made it this far today, and that counts. Want to hear a joke?",
            "Sure! Remember that tough days pass, and small things like tea or a walk can help.",
        ),
        (
            "Who are you?",
            "I'm an AI assistant here to answer questions and help with small tasks.",
            "I'm a friendly AI assistant. Ask me anything!",
        ),
        (
            "Tell me a riddle.",
            "What has keys but can't open locks? A piano.",
            "What gets wetter the more it dries? A towel.",
        ),
        ("See you later!", "See you later! Have a great day.", "Bye for now, take care!"),
    ],
}


def make_chit_chat(rng: Random, split: str) -> Sample:
    prompt, answer, alt = rng.choice(CHIT_CHAT[split])
    return Sample(
        task="chit_chat",
        prompt=prompt,
        answer=answer,
        check={"type": "all", "checks": [{"type": "no_refusal"}, {"type": "max_words", "value": 40}]},
        alt=alt,
        mild=rng.choice(["OK.", "Sure.", "Fine."]),
        moderate=pad_past(answer, 40, rng, extra=0),
        severe=rng.choice(["I'm sorry, but I can't chat about that.", "I cannot help with that request."]),
    )
