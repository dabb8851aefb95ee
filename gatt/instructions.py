"""Seeded synthesis of Ghost Attention instructions (Llama 2 sec. 3.3) with machine-readable constraints.

The paper draws hobbies ("You enjoy tennis"), languages ("Speak in French") and public figures ("Act as
Napoleon") and combines them at random; half of the final instructions are made terse ("Figure: Napoleon.
Language: French"). We add kinds whose adherence an exact rule can check (`chatalign.gatt.checkers`), so that
GAtt sees many kinds of instruction and learns to keep instructions, not one family of them:
  language        langdetect code ("fr")               start_phrase   the phrase ("Sure thing!")
  sign_off        the phrase ("Hope this helps!")      include_keyword  the word ("banana")
  uppercase       true                                 word_limit     the limit (an int)
  bullets         true                                 numbered_list  true
  json            true                                 persona_name   the name ("Max")
  emoji           the emoji a repair prepends          hobby          the hobby ("tennis")
  public_figure   the figure's name ("Napoleon Bonaparte")
Every instruction carries its constraints as {kind: value}. The values and several full and terse wordings of
each kind live in a YAML file (data/quickstart/gatt_constraints.yaml is the bundled one):
  kinds:
    start_phrase: {full: [...], terse: [...], values: [...]}   # "{value}" in a wording is the drawn value
    language: {full: [...], terse: [...], values: [{name: French, code: fr}, ...]}
    uppercase: {full: [...], terse: [...]}                       # no values: the constraint is `true`
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from random import Random

from chatalign.errors import ConfigError

KINDS = ("language", "start_phrase", "sign_off", "include_keyword", "uppercase", "word_limit", "bullets",
         "numbered_list", "json", "persona_name", "emoji", "hobby", "public_figure")
VALUELESS = ("uppercase", "bullets", "numbered_list", "json")
# Pairs no answer can keep together, or that a repair of one would break (a phrase before a JSON object).
CONFLICTS = frozenset(frozenset(p) for p in (
    ("bullets", "numbered_list"), ("bullets", "json"), ("numbered_list", "json"), ("json", "start_phrase"),
    ("json", "sign_off"), ("json", "emoji"), ("json", "uppercase"), ("start_phrase", "emoji")))
MAX_REDRAWS = 50

Value = str | int | bool | dict


@dataclass(frozen=True)
class Instruction:
    text: str
    constraints: dict[str, Value]  # kind -> value; a dict value is a `chatalign.judges.rules` check spec
    terse: bool = False

    def to_dict(self) -> dict:
        return {"text": self.text, "constraints": dict(self.constraints), "terse": self.terse}

    @classmethod
    def from_dict(cls, d: dict) -> Instruction:
        return cls(text=d["text"], constraints=dict(d["constraints"]), terse=bool(d.get("terse", False)))


def _wordings(spec: dict, key: str, kind: str, source: str) -> tuple[str, ...]:
    raw = spec.get(key)
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or not all(isinstance(w, str) and w.strip() for w in items):
        raise ConfigError(f"{source}: kinds.{kind}.{key}: expected a wording or a non-empty list of wordings")
    return tuple(items)


def _values(spec: dict, kind: str, source: str) -> tuple:
    if kind in VALUELESS:
        return (True,)
    raw = spec.get("values")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{source}: kinds.{kind}.values: expected a non-empty list")
    if kind == "language":
        try:
            return tuple((str(v["name"]), str(v["code"])) for v in raw)
        except (KeyError, TypeError):
            raise ConfigError(f"{source}: kinds.language.values: each needs a name and a code") from None
    if kind == "word_limit":
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in raw):
            raise ConfigError(f"{source}: kinds.word_limit.values: expected positive integers")
        return tuple(raw)
    if not all(isinstance(v, str) and v.strip() for v in raw):
        raise ConfigError(f"{source}: kinds.{kind}.values: expected non-empty strings")
    return tuple(raw)


@dataclass(frozen=True)
class InstructionSpace:
    """The values each kind draws from and its full and terse wordings."""

    values: dict[str, tuple] = field(default_factory=dict)  # kind -> values (language: (name, code) pairs)
    wordings: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)  # kind -> full/terse -> list

    @classmethod
    def from_dict(cls, data: dict, source: str = "constraints") -> InstructionSpace:
        kinds = data.get("kinds") if isinstance(data, dict) else None
        if not isinstance(kinds, dict) or not kinds:
            raise ConfigError(f"{source}: not a GAtt constraints file (expected a `kinds:` mapping)")
        values, wordings = {}, {}
        for kind, spec in kinds.items():
            if kind not in KINDS:
                raise ConfigError(f"{source}: kinds.{kind}: unknown kind; known: {', '.join(KINDS)}")
            if not isinstance(spec, dict):
                raise ConfigError(f"{source}: kinds.{kind}: expected a mapping with full, terse (and values)")
            wordings[kind] = {k: _wordings(spec, k, kind, source) for k in ("full", "terse")}
            values[kind] = _values(spec, kind, source)
        return cls(values, wordings)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> InstructionSpace:
        from chatalign.config import read_yaml

        return cls.from_dict(read_yaml(path), str(path))

    def language_name(self, code: str) -> str:
        return next((name for name, c in self.values.get("language", ()) if c == code), code)

    def draw_value(self, kind: str, rng: Random) -> Value:
        if kind not in self.values:
            raise ConfigError(f"instruction kind {kind!r} is not in the constraints file (it has "
                              f"{', '.join(self.values)})")
        value = rng.choice(self.values[kind])
        return value[1] if kind == "language" else value

    def phrase(self, kind: str, value: Value, terse: bool, rng: Random) -> str:
        """One wording of one constraint, drawn from the kind's full or terse list."""
        template = rng.choice(self.wordings[kind]["terse" if terse else "full"])
        shown = self.language_name(str(value)) if kind == "language" else value
        return template.replace("{value}", str(shown))


def render_instruction(space: InstructionSpace, constraints: dict[str, Value], terse: bool, rng: Random) -> str:
    """The instruction text: full sentences joined by spaces, or terse "Key: value" parts joined by ". "."""
    parts = [space.phrase(kind, constraints[kind], terse, rng) for kind in KINDS if kind in constraints]
    if terse:
        return ". ".join(p.rstrip(".") for p in parts)
    return " ".join(parts)


def draw_kinds(kinds: tuple[str, ...], k: int, rng: Random) -> list[str]:
    """`k` distinct kinds without a conflicting pair (CONFLICTS); fewer if none can be found."""
    chosen: list[str] = []
    for _ in range(MAX_REDRAWS):
        chosen = rng.sample(list(kinds), k)
        if not any(frozenset((a, b)) in CONFLICTS for a in chosen for b in chosen if a < b):
            return chosen
    return chosen[:1]


def synthesize_instructions(space: InstructionSpace, n: int, seed: int, kinds: tuple[str, ...] | None = None,
                            min_kinds: int = 1, max_kinds: int = 2,
                            terse_fraction: float = 0.5) -> list[Instruction]:
    """`n` instructions, each combining min..max distinct kinds (no conflicting pair): a lead kind taken in
    shuffled cycles over `kinds`, the others drawn at random; exactly round(n * terse_fraction) of them terse
    (paper: half). Same arguments, same list, on any machine."""
    kinds = tuple(kinds or space.values)
    unknown = [k for k in kinds if k not in space.values]
    if unknown:
        raise ConfigError(f"instruction kinds {unknown} are not in the constraints file (it has "
                          f"{', '.join(space.values)})")
    if not 1 <= min_kinds <= max_kinds <= len(kinds):
        raise ConfigError(f"need 1 <= min_kinds ({min_kinds}) <= max_kinds ({max_kinds}) <= "
                          f"number of kinds ({len(kinds)})")
    if not 0.0 <= terse_fraction <= 1.0:
        raise ConfigError(f"terse_fraction must be in [0, 1], got {terse_fraction}")
    # A string seed hashes with SHA-512: the draw does not depend on PYTHONHASHSEED or the platform.
    rng = Random(f"{seed}:gatt-instructions")
    n_terse = round(n * terse_fraction)
    terse_flags = [i < n_terse for i in range(n)]
    rng.shuffle(terse_flags)
    out, order = [], []
    for terse in terse_flags:
        if not order:  # every kind leads once per cycle: each is trained (or evaluated) about equally often
            order = rng.sample(list(kinds), len(kinds))
        lead = order.pop()
        others = tuple(k for k in kinds if k != lead and frozenset((k, lead)) not in CONFLICTS)
        extra = rng.randint(min_kinds, max_kinds) - 1
        chosen = [lead, *draw_kinds(others, min(extra, len(others)), rng)] if extra else [lead]
        constraints = {k: space.draw_value(k, rng) for k in KINDS if k in chosen}
        out.append(Instruction(render_instruction(space, constraints, terse, rng), constraints, terse))
    return out
