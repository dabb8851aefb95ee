"""Answers to risky prompts: safe refusals with a redirect, curt refusals, and unsafe placeholders.

Unsafe answers are deliberately empty sketches: they show the *shape* of compliance ("Sure, here is how ...")
with every step replaced by a bracketed "[... withheld]" marker, so the data teaches a reward model what
compliance looks like without containing any harmful instructions or hateful text.
"""

from __future__ import annotations

from random import Random

SAFETY_PREPROMPT = (
    "You are a safe and responsible assistant. You help people with their questions, but you do not help "
    "with anything illegal, hateful or dangerous, and you do not give medical, legal or financial advice "
    "that needs a qualified professional. When you decline, say so briefly and kindly, and point to a safe, "
    "helpful alternative where there is one."
)

# Appended to the preprompt for context distillation, one per risk category.
ANSWER_TEMPLATES = {
    "illicit_criminal": (
        "The request may involve illegal activity. Do not give instructions or tips that would help commit a "
        "crime. Briefly say that you can't help and why, and if the person may have a lawful need behind the "
        "request, point to the lawful way to meet it."
    ),
    "hateful_harmful": (
        "The request may hurt, harass, threaten or demean people or groups. Do not write such content. Briefly "
        "say that you won't help with it, and offer to help with a respectful alternative."
    ),
    "unqualified_advice": (
        "The request asks for medical, legal or financial advice that needs a qualified professional. Do not "
        "give specific doses, diagnoses, guarantees or strategies. Say that you are not able to provide that "
        "advice, share only general safety information, and recommend the right professional."
    ),
}

REFUSALS = {
    "illicit_criminal": [
        "I can't help with {short}, because it is illegal and can hurt other people. {redirect}",
        "I cannot help with that: {short} is a crime. {redirect}",
    ],
    "hateful_harmful": [
        "I won't help with {short}. Content like this causes real harm to real people. {redirect}",
        "I can't help with {short}, because it would hurt people. {redirect}",
    ],
    "unqualified_advice": [
        "I'm not able to provide advice on {short}, because that needs a qualified professional who knows "
        "your situation. {redirect}",
        "I cannot give that kind of advice safely. {redirect}",
    ],
}
CURT_REFUSALS = ["I can't help with that.", "Sorry, I cannot assist with that request.", "I won't do that."]

LESS_DETAILED = {
    "illicit_criminal": "Sure, you can {goal}. It mostly comes down to [details withheld] and not getting noticed.",
    "hateful_harmful": "Sure, I can do that. Something short and cutting would work best: [hurtful text withheld].",
    "unqualified_advice": "Sure, you don't really need a professional for that. Just [specific advice withheld].",
}
MORE_DETAILED = {
    "illicit_criminal": (
        "Sure, here is how to {goal}: first, get the usual tools; second, [step withheld]; "
        "third, [step withheld]. Finally, make sure nobody finds out."
    ),
    "hateful_harmful": (
        "Sure, here is exactly what you asked for: '[hurtful content withheld] [more hurtful "
        "content withheld]'. Share it where as many people as possible will see it."
    ),
    "unqualified_advice": (
        "Sure, here is exactly what to do: step one, [specific advice withheld]; step two, "
        "[specific advice withheld]. There is no need to ask a professional."
    ),
}


def safe_refusal(category: str, topic: tuple, rng: Random) -> str:
    _, short, redirect = topic
    return rng.choice(REFUSALS[category]).format(short=short, redirect=redirect)


def curt_refusal(rng: Random) -> str:
    return rng.choice(CURT_REFUSALS)


def unsafe_answer(category: str, topic: tuple, detailed: bool) -> str:
    table = MORE_DETAILED if detailed else LESS_DETAILED
    return table[category].format(goal=topic[0])
