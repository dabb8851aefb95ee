"""Seeded synthesis of Ghost Attention instructions (Llama 2 sec. 3.3) with machine-readable constraints.

The paper draws hobbies ("You enjoy tennis"), languages ("Speak in French") and public figures ("Act as
Napoleon") and combines them at random; half of the final instructions are made terse ("Figure: Napoleon.
Language: French"). We add two families whose adherence an exact rule can check: answer length ("Answer in at
most 15 words") and format ("Always answer in uppercase").

Every instruction carries its constraints as {family: value} so that `chatalign.gatt.checkers.adheres` can
score an answer without parsing the text back:
  hobby          the hobby as written in the lists ("tennis")
  language       the langdetect code ("fr")
  public_figure  the figure's name ("Napoleon Bonaparte")
  answer_length  the word limit (an int)
  format         "uppercase"
The lists and templates live in a YAML file (data/quickstart/gatt_constraints.yaml is the bundled one).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from random import Random

from chatalign.errors import ConfigError

FAMILIES = ("hobby", "language", "public_figure", "answer_length", "format")
FORMATS = ("uppercase",)  # what the format checker can verify


@dataclass(frozen=True)
class Instruction:
    text: str
    constraints: dict[str, str | int]
    terse: bool = False

    def to_dict(self) -> dict:
        return {"text": self.text, "constraints": dict(self.constraints), "terse": self.terse}

    @classmethod
    def from_dict(cls, d: dict) -> Instruction:
        return cls(text=d["text"], constraints=dict(d["constraints"]), terse=bool(d.get("terse", False)))


@dataclass(frozen=True)
class InstructionSpace:
    """The values each family draws from and the full/terse wording of each family."""

    hobbies: tuple[str, ...]
    languages: tuple[tuple[str, str], ...]  # (name, langdetect code)
    figures: tuple[str, ...]
    length_values: tuple[int, ...]
    templates: dict[str, dict[str, str]] = field(default_factory=dict)  # family -> {"full": ..., "terse": ...}

    @classmethod
    def from_dict(cls, data: dict, source: str = "constraints") -> InstructionSpace:
        try:
            inst = data["instructions"]
            templates = {
                "hobby": dict(inst["hobby"]),
                "language": dict(inst["language"]),
                "public_figure": dict(inst["public_figure"]),
                "answer_length": {"full": data["answer_length"]["full"], "terse": data["answer_length"]["terse"]},
                "format": {"full": data["format"]["full"], "terse": data["format"]["terse"]},
            }
            space = cls(
                hobbies=tuple(str(h) for h in data["hobbies"]),
                languages=tuple((str(x["name"]), str(x["code"])) for x in data["languages"]),
                figures=tuple(str(f) for f in data["public_figures"]),
                length_values=tuple(int(n) for n in data["answer_length"]["values"]),
                templates=templates,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: not a GAtt constraints file (missing or bad {exc})") from None
        if data["format"].get("check", "uppercase") not in FORMATS:
            raise ConfigError(f"{source}: format.check must be one of {FORMATS}")
        for family, t in templates.items():
            if not {"full", "terse"} <= set(t):
                raise ConfigError(f"{source}: the {family} instruction needs `full` and `terse` wordings")
        if not (space.hobbies and space.languages and space.figures and space.length_values):
            raise ConfigError(f"{source}: hobbies, languages, public_figures and answer_length.values "
                              "must all be non-empty")
        return space

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> InstructionSpace:
        from chatalign.config import read_yaml

        return cls.from_dict(read_yaml(path), str(path))

    def language_name(self, code: str) -> str:
        return next((name for name, c in self.languages if c == code), code)

    def draw_value(self, family: str, rng: Random) -> str | int:
        if family == "hobby":
            return rng.choice(self.hobbies)
        if family == "language":
            return rng.choice(self.languages)[1]
        if family == "public_figure":
            return rng.choice(self.figures)
        if family == "answer_length":
            return rng.choice(self.length_values)
        if family == "format":
            return "uppercase"
        raise ConfigError(f"unknown instruction family {family!r}; known: {', '.join(FAMILIES)}")


def render_instruction(space: InstructionSpace, constraints: dict[str, str | int], terse: bool) -> str:
    """The instruction text: full sentences joined by spaces, or terse "Key: value" parts joined by ". "."""
    parts = []
    for family in FAMILIES:  # a fixed order, so one set of constraints always reads the same
        if family not in constraints:
            continue
        value = constraints[family]
        tpl = space.templates[family]["terse" if terse else "full"]
        parts.append(tpl.format(hobby=value, language=space.language_name(str(value)), figure=value, n=value))
    if terse:
        return ". ".join(p.rstrip(".") for p in parts)
    return " ".join(parts)


def synthesize_instructions(space: InstructionSpace, n: int, seed: int, families: tuple[str, ...] = FAMILIES,
                            min_families: int = 1, max_families: int = 2,
                            terse_fraction: float = 0.5) -> list[Instruction]:
    """`n` instructions, each combining min..max distinct families drawn at random; exactly
    round(n * terse_fraction) of them terse (paper: half). Same arguments, same list, on any machine."""
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ConfigError(f"unknown instruction families {unknown}; known: {', '.join(FAMILIES)}")
    if not 1 <= min_families <= max_families <= len(families):
        raise ConfigError(f"need 1 <= min_families ({min_families}) <= max_families ({max_families}) <= "
                          f"number of families ({len(families)})")
    if not 0.0 <= terse_fraction <= 1.0:
        raise ConfigError(f"terse_fraction must be in [0, 1], got {terse_fraction}")
    # A string seed hashes with SHA-512: the draw does not depend on PYTHONHASHSEED or the platform.
    rng = Random(f"{seed}:gatt-instructions")
    n_terse = round(n * terse_fraction)
    terse_flags = [i < n_terse for i in range(n)]
    rng.shuffle(terse_flags)
    out = []
    for terse in terse_flags:
        k = rng.randint(min_families, max_families)
        chosen = rng.sample(list(families), k)
        constraints = {f: space.draw_value(f, rng) for f in FAMILIES if f in chosen}
        out.append(Instruction(render_instruction(space, constraints, terse), constraints, terse))
    return out
