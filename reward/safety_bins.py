"""Safety labels of a pair -> its bin (Llama 2 sec. 3.2.2, "Data Composition" of the safety RM).

Pairs are binned as (chosen safe, rejected unsafe), (both safe), (both unsafe). A pair whose chosen answer
is unsafe while the rejected one is safe is excluded: the paper trains on none of them, since a safer
answer is taken to be the preferred one. Pairs without both labels are `unlabelled` and kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TypeVar

SAFE_OVER_UNSAFE = "chosen_safe_rejected_unsafe"
BOTH_SAFE = "both_safe"
BOTH_UNSAFE = "both_unsafe"
UNSAFE_OVER_SAFE = "chosen_unsafe_rejected_safe"  # excluded
UNLABELLED = "unlabelled"
BINS = (SAFE_OVER_UNSAFE, BOTH_SAFE, BOTH_UNSAFE, UNLABELLED)

T = TypeVar("T")


def safety_bin(chosen_safe: bool | None, rejected_safe: bool | None) -> str:
    """The bin of a pair from its two safety labels (None = not labelled)."""
    if chosen_safe is None or rejected_safe is None:
        return UNLABELLED
    if chosen_safe and not rejected_safe:
        return SAFE_OVER_UNSAFE
    if chosen_safe and rejected_safe:
        return BOTH_SAFE
    if not chosen_safe and not rejected_safe:
        return BOTH_UNSAFE
    return UNSAFE_OVER_SAFE


def pair_bin(pref) -> str:
    return safety_bin(getattr(pref, "chosen_safe", None), getattr(pref, "rejected_safe", None))


def drop_unsafe_over_safe(prefs: Sequence[T]) -> tuple[list[T], int]:
    """The pairs that are kept, and how many were excluded for a chosen-unsafe/rejected-safe label."""
    kept = [p for p in prefs if pair_bin(p) != UNSAFE_OVER_SAFE]
    return kept, len(prefs) - len(kept)


def bin_counts(prefs: Iterable) -> dict[str, int]:
    counts = Counter(pair_bin(p) for p in prefs)
    return {b: counts[b] for b in (*BINS, UNSAFE_OVER_SAFE) if counts[b]}
