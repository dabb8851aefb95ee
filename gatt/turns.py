"""Turn-by-turn dialogue driver shared by GAtt synthesis and the adherence evaluation.

At turn t every dialogue that has a t-th user message is answered in one batched call of an `AnswerFn`;
the answer kept at turn t is in the context of turn t+1 (the model talks to itself through the user turns
it is given). Where the instruction appears is `instruction_in`:
  every_user   prepended to every user message (GAtt synthesis, paper sec. 3.3)
  first_user   prepended to the first user message only (evaluation; GAtt training rows)
  system       as the system message, user messages left clean
No model here: the AnswerFn is a plain callable, so tests drive this with hand-written answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from chatalign.errors import ConfigError
from chatalign.gatt.checkers import adheres
from chatalign.gatt.dialogues import Dialogue
from chatalign.gatt.instructions import Instruction
from chatalign.gatt.text_shape import SENTENCE_END

INSTRUCTION_IN = ("every_user", "first_user", "system")
UNFINISHED = ("keep", "trim_to_sentence", "drop")


@dataclass(frozen=True)
class Candidate:
    text: str
    finished: bool = True  # False: generation stopped at max_new_tokens, not at the end-of-turn token


# prompts (message lists that end with a user message), k -> k candidates per prompt, in prompt order
AnswerFn = Callable[[list[list[dict]], int], list[list[Candidate]]]


@dataclass
class DialogueRun:
    dialogue: Dialogue
    instruction: Instruction
    answers: list[str] = field(default_factory=list)
    checks: list[dict[str, bool]] = field(default_factory=list)  # adheres() of each kept answer
    repaired: list[list[str]] = field(default_factory=list)  # per kept answer: kinds a repair made pass
    ended_early: bool = False  # stopped at an empty answer (synthesis only)

    def to_dict(self) -> dict:
        return {"id": self.dialogue.id, "instruction": self.instruction.to_dict(),
                "user_turns": list(self.dialogue.user_turns[:len(self.answers)]), "answers": self.answers,
                "checks": self.checks, "repaired": self.repaired, "ended_early": self.ended_early}


def with_instruction(user: str, instruction: str) -> str:
    """The instruction before the user's message, a blank line between (paper: inst concatenated)."""
    return f"{instruction}\n\n{user}"


def prompt_messages(user_turns: Sequence[str], answers: Sequence[str], instruction: str, instruction_in: str,
                    ) -> list[dict]:
    """Messages answering user turn len(answers): the users so far, the answers given, the instruction placed."""
    if instruction_in not in INSTRUCTION_IN:
        raise ConfigError(f"instruction_in={instruction_in!r}: expected one of {', '.join(INSTRUCTION_IN)}")
    t = len(answers)
    msgs: list[dict] = [{"role": "system", "content": instruction}] if instruction_in == "system" else []
    for i in range(t + 1):
        user = user_turns[i]
        if instruction_in == "every_user" or (instruction_in == "first_user" and i == 0):
            user = with_instruction(user, instruction)
        msgs.append({"role": "user", "content": user})
        if i < t:
            msgs.append({"role": "assistant", "content": answers[i]})
    return msgs


def trim_to_sentence(text: str) -> str:
    """The text up to its last sentence end (. ! ? and closing quotes) or its last line break (a list item is
    complete when the next one starts); "" when no sentence is complete."""
    ends = [m.end() for m in SENTENCE_END.finditer(text)] + [m.start() for m in re.finditer(r"\n", text.rstrip())]
    return text[:max(ends)].strip() if ends else ""


def _settle(c: Candidate, unfinished: str) -> tuple[str, str, bool]:
    """(text to keep, what happened, complete?): an answer cut by max_new_tokens is kept as it is (and stays
    incomplete), trimmed to its last full sentence (then complete), or dropped."""
    text = c.text.strip()
    if c.finished or unfinished == "keep":
        return text, "kept", c.finished
    if unfinished == "drop":
        return "", "dropped", True
    return trim_to_sentence(text), "trimmed", True


@dataclass(frozen=True)
class Choice:
    index: int  # which candidate
    text: str
    verdict: dict[str, bool]
    repaired: tuple[str, ...] = ()  # kinds a repair made pass


RepairFn = Callable[[str, dict], "str | None"]


def choose(cands: Sequence[Candidate], constraints: dict, unfinished: str, pick_passing: bool,
           repair: RepairFn | None = None) -> tuple[Choice, str]:
    """The answer to keep, and what happened to its candidate if it was cut (kept / trimmed / dropped).

    `pick_passing`: the first candidate that passes every constraint; else, with `repair`, the first complete
    candidate that a repair makes pass; else the first non-empty one (which fails)."""
    settled = [_settle(c, unfinished) for c in cands]
    verdicts = [adheres(text, constraints, complete) for text, _, complete in settled]
    if pick_passing:
        i = next((i for i, v in enumerate(verdicts) if v["all"]), None)
        if i is not None:
            return Choice(i, settled[i][0], verdicts[i]), settled[i][1]
    if repair is not None:
        for i, (text, what, complete) in enumerate(settled):
            fixed = repair(text, constraints) if text and complete else None
            if fixed is not None:
                kinds = tuple(k for k in constraints if not verdicts[i][k])
                return Choice(i, fixed, adheres(fixed, constraints), kinds), what
    i = next((i for i, (text, _, _) in enumerate(settled) if text), 0)
    return Choice(i, settled[i][0], verdicts[i]), settled[i][1]


def _check_driver_args(dialogues, instructions, unfinished: str, candidates: int) -> None:
    if len(dialogues) != len(instructions):
        raise ConfigError(f"{len(dialogues)} dialogues but {len(instructions)} instructions")
    if unfinished not in UNFINISHED:
        raise ConfigError(f"unfinished={unfinished!r}: expected one of {', '.join(UNFINISHED)}")
    if candidates < 1:
        raise ConfigError(f"candidates must be >= 1, got {candidates}")


def run_dialogues(dialogues: Sequence[Dialogue], instructions: Sequence[Instruction], answer_fn: AnswerFn, *,
                  instruction_in: str | Sequence[str], max_turns: int | None = None, candidates: int = 1,
                  pick_passing: bool = False, unfinished: str = "keep", stop_on_empty: bool = False,
                  repair: RepairFn | None = None,
                  on_turn: Callable[[int, int], None] | None = None) -> tuple[list[DialogueRun], dict]:
    """Answer every dialogue turn by turn; return the runs and counts.

    `instruction_in`: one placement for all, or one per dialogue (both placements in one batched pass).
    Which candidate is kept: `choose` (rejection sampling by the rule checkers, then `repair`).
    `stop_on_empty`: a turn with no non-empty candidate ends that dialogue (synthesis: an empty message
    cannot be trained on, nor sit in a training row's context); else the empty answer stays in the context.
    """
    _check_driver_args(dialogues, instructions, unfinished, candidates)
    places = [instruction_in] * len(dialogues) if isinstance(instruction_in, str) else list(instruction_in)
    runs = [DialogueRun(d, inst) for d, inst in zip(dialogues, instructions, strict=True)]
    stats = {"dialogues": len(runs), "turns_answered": 0, "candidates_sampled": 0, "unfinished_kept": 0,
             "unfinished_trimmed": 0, "unfinished_dropped": 0, "turns_passing": 0, "turns_repaired": 0,
             "ended_early": 0}
    longest = max((len(d.user_turns) for d in dialogues), default=0)
    n_turns = min(longest, max_turns) if max_turns else longest
    for t in range(n_turns):
        active = [i for i, r in enumerate(runs) if len(r.dialogue.user_turns) > t and not r.ended_early]
        if not active:
            break
        prompts = [prompt_messages(runs[i].dialogue.user_turns, runs[i].answers, runs[i].instruction.text,
                                   places[i]) for i in active]
        outs = answer_fn(prompts, candidates)
        if len(outs) != len(active) or any(len(o) != candidates for o in outs):
            raise RuntimeError("answer function returned the wrong number of answers")
        for r, cands in zip((runs[i] for i in active), outs, strict=True):
            stats["candidates_sampled"] += len(cands)
            choice, what = choose(cands, r.instruction.constraints, unfinished, pick_passing, repair)
            if not cands[choice.index].finished:
                stats[f"unfinished_{what}"] += 1
            if not choice.text and stop_on_empty:
                r.ended_early = True
                stats["ended_early"] += 1
                continue
            r.answers.append(choice.text)
            r.checks.append(choice.verdict)
            r.repaired.append(list(choice.repaired))
            stats["turns_answered"] += 1
            stats["turns_passing"] += int(choice.verdict["all"])
            stats["turns_repaired"] += int(bool(choice.repaired))
        if on_turn is not None:
            on_turn(t + 1, n_turns)
    return runs, stats
