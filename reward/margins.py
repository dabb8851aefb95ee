"""Preference strength -> ranking-loss margin (Llama 2 sec. 3.2.2, Table 27).

A table maps each of the five strength labels to a margin. Built in: the paper's `small` and `large`
tables and `none` (all zero: the plain binary ranking loss, InstructGPT's). A recipe may also give its own
mapping; it must name all five labels, so that no label silently falls back to zero.
"""

from __future__ import annotations

from collections.abc import Mapping

STRENGTHS = ("significantly_better", "better", "slightly_better", "negligibly_better", "unsure")

MARGIN_TABLES: dict[str, dict[str, float]] = {
    "small": {"significantly_better": 1.0, "better": 2 / 3, "slightly_better": 1 / 3,
              "negligibly_better": 0.0, "unsure": 0.0},
    "large": {"significantly_better": 3.0, "better": 2.0, "slightly_better": 1.0,
              "negligibly_better": 0.0, "unsure": 0.0},
    "none": dict.fromkeys(STRENGTHS, 0.0),
}


def strength_name(strength) -> str | None:
    """'better' from Strength.better or 'better'; None stays None."""
    if strength is None:
        return None
    return str(getattr(strength, "value", strength))


def resolve_margin_table(spec: str | Mapping[str, float]) -> dict[str, float]:
    """A built-in table by name, or a validated copy of a custom {strength: margin} mapping."""
    if isinstance(spec, str):
        if spec not in MARGIN_TABLES:
            raise ValueError(f"margin table {spec!r}: expected one of {', '.join(MARGIN_TABLES)} or a mapping")
        return dict(MARGIN_TABLES[spec])
    table = {strength_name(k): float(v) for k, v in spec.items()}
    unknown = sorted(set(table) - set(STRENGTHS))
    missing = [s for s in STRENGTHS if s not in table]
    if unknown:
        raise ValueError(f"margin mapping: unknown strength label(s) {unknown}; labels are {', '.join(STRENGTHS)}")
    if missing:
        raise ValueError(f"margin mapping: missing {missing}; give a margin for every one of {', '.join(STRENGTHS)}")
    return table


def margin_for(strength, table: Mapping[str, float], default_strength=None) -> float:
    """m(r) of Llama 2 eq. 2: the margin of a pair whose annotated strength is `strength`.

    A pair without a strength takes `default_strength`; without either this is an error, never a guess.
    """
    name = strength_name(strength) or strength_name(default_strength)
    if name is None:
        raise ValueError("pair has no preference strength and no default strength is configured")
    try:
        return float(table[name])
    except KeyError:
        raise ValueError(f"unknown preference strength {name!r}; labels are {', '.join(STRENGTHS)}") from None
