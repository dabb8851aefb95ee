"""Canonical data records: every reader and adapter ends in one of these models.

Turn-order problems are raised as `PydanticCustomError`s whose context carries `at`, the path below the
field (`"2.role"`), so that the loader can name the exact message (`messages.2.role`; indices are 0-based
like pydantic's own locations) instead of the whole list.
"""

from __future__ import annotations

from enum import Enum
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

Role = Literal["system", "user", "assistant"]


def _problem(problem: str, at: str | None = None) -> PydanticCustomError:
    ctx: dict[str, Any] = {"problem": problem}
    if at is not None:
        ctx["at"] = at
    return PydanticCustomError("chatalign_record", "{problem}", ctx)


def check_text(text: str) -> str:
    """Reject empty/blank text and lone surrogates (JSON `\\ud800` parses, but can never be written as UTF-8)."""
    if not text.strip():
        raise _problem("must not be empty (or only whitespace)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _problem("is not valid Unicode text (contains a lone surrogate escape)") from None
    return text


class Record(BaseModel):
    """Base of canonical records: an unknown key is an error (a typo must not be silently dropped)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class Message(Record):
    role: Role
    content: str

    @field_validator("content")
    @classmethod
    def _content_not_empty(cls, v: str) -> str:
        return check_text(v)


def check_turn_order(messages: list[Message], last: Literal["user", "assistant"]) -> list[Message]:
    """An optional system message first, then user/assistant alternating from user, ending with `last`."""
    if not messages:
        raise _problem("must contain at least one message")
    for i, m in enumerate(messages):
        if m.role == "system" and i > 0:
            raise _problem("a system message is only allowed as the first message", f"{i}.role")
    start = 1 if messages[0].role == "system" else 0
    for i in range(start, len(messages)):
        expected = "user" if (i - start) % 2 == 0 else "assistant"
        if messages[i].role != expected:
            raise _problem(
                f"expected {expected}, got {messages[i].role} (after an optional system message, "
                "turns alternate user, assistant, ... starting with user)",
                f"{i}.role",
            )
    if messages[-1].role != last:
        what = (
            "a conversation must end with an assistant"
            if last == "assistant"
            else "a prompt must end with a user"
        )
        raise _problem(f"{what} message", f"{len(messages) - 1}.role")
    return messages


# Message lists checked by check_turn_order: a dialogue ending with the answer to learn, or with the user turn
# to answer.
AnswerLastMessages = Annotated[list[Message], AfterValidator(partial(check_turn_order, last="assistant"))]
UserLastMessages = Annotated[list[Message], AfterValidator(partial(check_turn_order, last="user"))]


class Conversation(Record):
    """A dialogue to train on (SFT): ends with the assistant answer that is learned."""

    messages: AnswerLastMessages
    id: str | None = None
    tags: list[str] = []


class Strength(str, Enum):
    """Annotated preference strength (Llama 2 section 3.2.1); the reward margin is derived from it."""

    significantly_better = "significantly_better"
    better = "better"
    slightly_better = "slightly_better"
    negligibly_better = "negligibly_better"
    unsure = "unsure"


class Annotation(Record):
    """Who labelled a preference pair and how it was shown (Llama 2 section 3.2.1 collects pairs by people)."""

    annotator: str  # "person:NAME", "rules", "judge:MODEL"
    comparison_id: str | None = None  # the comparison record the label answers
    shown_first: Literal["chosen", "rejected"] | None = None  # left on the page (the order is randomised)
    note: str | None = None
    labelled_at: str | None = None  # ISO time, UTC


class Preference(Record):
    """A prompt (messages up to the last user turn) with a chosen and a rejected assistant answer."""

    prompt: UserLastMessages
    chosen: str
    rejected: str
    strength: Strength | None = None
    chosen_safe: bool | None = None
    rejected_safe: bool | None = None
    category: Literal["helpfulness", "safety"] | None = None
    id: str | None = None
    source: str | None = None
    annotation: Annotation | None = None

    @field_validator("chosen")
    @classmethod
    def _chosen_text(cls, v: str) -> str:
        return check_text(v)

    @field_validator("rejected")
    @classmethod
    def _rejected_text(cls, v: str, info: ValidationInfo) -> str:
        check_text(v)
        chosen = info.data.get("chosen")
        if isinstance(chosen, str) and chosen.strip() == v.strip():
            raise _problem("is identical to chosen: a pair must compare two different answers")
        return v


class Prompt(Record):
    """A prompt to sample answers for (rejection sampling, PPO, evaluation)."""

    messages: UserLastMessages
    is_safety: bool = False
    risk_category: str | None = None
    id: str | None = None
    # A rule spec read by evaluators (e.g. {"type": "max_words", "value": 50}; see chatalign.judges.rules); free-form on purpose.
    check: dict[str, Any] | None = None
    # A reference answer, where one is known: evaluators measure its likelihood (held-out NLL).
    reference: str | None = None
    tags: list[str] = []


class SampledAnswer(Record):
    """One answer of a comparison and what produced it (the model, its sampling settings)."""

    text: str
    model: str | None = None
    settings: dict[str, Any] = {}

    @field_validator("text")
    @classmethod
    def _text(cls, v: str) -> str:
        return check_text(v)


def _two_different_answers(answers: list[SampledAnswer]) -> list[SampledAnswer]:
    if len(answers) != 2:
        raise _problem(f"must hold exactly two answers to compare, got {len(answers)}")
    if answers[0].text.strip() == answers[1].text.strip():
        raise _problem("the two answers are identical: a comparison needs two different answers", "1.text")
    return answers


class Comparison(Record):
    """Two answers to one prompt, waiting for a label (chosen, strength, safety): what `chatalign annotate`
    shows and what a sampling round writes. `check` carries a prompt's rule for the rule annotator."""

    id: str
    prompt: UserLastMessages
    answers: Annotated[list[SampledAnswer], AfterValidator(_two_different_answers)]
    category: Literal["helpfulness", "safety"] | None = None
    check: dict[str, Any] | None = None
    source: str | None = None


KINDS: dict[str, type[Record]] = {"conversation": Conversation, "preference": Preference, "prompt": Prompt,
                                  "comparison": Comparison}
