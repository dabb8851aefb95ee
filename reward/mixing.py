"""A declarative mix of preference sources, sampled reproducibly from a seed.

Each source has a `ratio` (any positive weights; they are normalised to shares s_i). How many pairs each
source contributes:

- `total` not set (the default): the largest total N such that no source is oversampled,
  N = min_i floor(n_i / s_i) over the sources' sizes n_i. With one source that is all of it; with the
  safety RM's 90/10 mix of 2000 safety and 5000 helpful pairs it is N = 2222: 2000 safety + 222 helpful.
- `total` set: N = total, and a source asked for more pairs than it has is repeated (whole shuffled
  passes, then a random remainder) and reported as oversampled.
- `max_repeats` of a source (with `total`): it gives at most floor(max_repeats * n_i) pairs, and what it cannot
  give goes to the other sources by their shares (a small fresh batch beside large files: drawn once or twice,
  not dozens of times, which a reward model would learn by heart).

N is split by the largest-remainder method, so the counts add up to exactly N and each is floor or ceil
of N * s_i (ties broken by source order). Each source is drawn from with its own seeded RNG
(seed, source index), so adding a source does not change what another one contributes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class MixResult(Generic[T]):
    items: list[tuple[int, T]]  # (source index, item), shuffled across sources
    counts: list[int]  # pairs drawn per source
    available: list[int]
    oversampled: list[bool]


def largest_total(available: Sequence[int], ratios: Sequence[float]) -> int:
    """The biggest N with N * share_i <= n_i for every source (no source repeated)."""
    shares = normalise(ratios)
    return min(math.floor(n / s + 1e-9) for n, s in zip(available, shares, strict=True))


def normalise(ratios: Sequence[float]) -> list[float]:
    if not ratios or any(r <= 0 for r in ratios):
        raise ValueError(f"mix ratios must be positive, got {list(ratios)}")
    total = float(sum(ratios))
    return [r / total for r in ratios]


def split_total(total: int, ratios: Sequence[float]) -> list[int]:
    """Integer counts summing to `total`, each floor or ceil of total * share (largest remainder)."""
    shares = normalise(ratios)
    exact = [total * s for s in shares]
    counts = [math.floor(x + 1e-9) for x in exact]
    left = total - sum(counts)
    order = sorted(range(len(shares)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[:left]:
        counts[i] += 1
    return counts


def cap_counts(counts: Sequence[int], available: Sequence[int], ratios: Sequence[float],
               max_repeats: Sequence[float | None]) -> list[int]:
    """Counts with source i held to floor(max_repeats_i * n_i), the excess split over the uncapped sources by
    their ratios (largest remainder), until none exceeds its cap; the total shrinks only when all are capped."""
    caps = [math.inf if r is None else math.floor(r * n + 1e-9) for r, n in zip(max_repeats, available, strict=True)]
    out, fixed = list(counts), set()
    while True:
        over = {i for i, (k, c) in enumerate(zip(out, caps)) if k > c and i not in fixed}
        if not over:
            return out
        fixed |= over
        for i in fixed:
            out[i] = caps[i]
        free = [i for i in range(len(out)) if i not in fixed]
        if not free:
            return out
        left = sum(counts) - sum(out[i] for i in fixed)
        for i, k in zip(free, split_total(left, [ratios[i] for i in free]), strict=True):
            out[i] = k


def draw(pool: Sequence[T], k: int, rng: random.Random) -> list[T]:
    """k items of pool: without repetition when k <= len(pool), else whole shuffled passes + a remainder."""
    if k <= len(pool):
        return rng.sample(list(pool), k)
    out: list[T] = []
    while len(out) + len(pool) <= k:
        full = list(pool)
        rng.shuffle(full)
        out.extend(full)
    out.extend(rng.sample(list(pool), k - len(out)))
    return out


def sample_mix(pools: Sequence[Sequence[T]], ratios: Sequence[float], seed: int,
               total: int | None = None, max_repeats: Sequence[float | None] | None = None) -> MixResult[T]:
    """Draw the mix (see the module docstring); the result is shuffled with the same seed."""
    if len(pools) != len(ratios):
        raise ValueError(f"{len(pools)} sources but {len(ratios)} ratios")
    available = [len(p) for p in pools]
    empty = [i for i, n in enumerate(available) if n == 0]
    if empty:
        raise ValueError(f"source(s) {empty} have no pairs to draw from")
    n_total = largest_total(available, ratios) if total is None else total
    counts = split_total(n_total, ratios)
    if max_repeats is not None and any(r is not None for r in max_repeats):
        counts = cap_counts(counts, available, ratios, max_repeats)
    items: list[tuple[int, T]] = []
    for i, (pool, k) in enumerate(zip(pools, counts, strict=True)):
        rng = random.Random(seed * 1_000_003 + i)
        items.extend((i, x) for x in draw(pool, k, rng))
    random.Random(seed * 1_000_003 - 1).shuffle(items)
    return MixResult(items, counts, available, [k > n for k, n in zip(counts, available, strict=True)])
