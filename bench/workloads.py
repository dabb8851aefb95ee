"""Synthetic workloads shaped like issue 9's reference workload, for the benchmarks under bench/.

The issue's reference workload has log-normal example lengths (median about 450 tokens on GPU, about 200 on
CPU with the embedded model), 40% of them prompt tokens, capped. Length is what sets the cost of a training
step and, in a padded batch, the share of padding; token identity does not, so the tokens are random ids of
ordinary (non-special) vocabulary entries, drawn from a seeded generator.
"""

from __future__ import annotations

import math
import random

# CPU shape: a prompt and an answer drawn apart, medians 40% / 60% of 170, make sequences of median ~200
# tokens with ~40% prompt tokens (the sum of two log-normals has a larger median than either part)
CPU_PROMPT_MEDIAN = 68
CPU_ANSWER_MEDIAN = 102
CPU_CAP = 1024
SIGMA = 1.0  # spread of log(length): TRL's padded reward batches of 16 pairs hold ~70% padding with it
FIRST_ORDINARY_ID = 1000  # SmolLM2's special and byte-level tokens all sit below this id


def lognormal_length(rng: random.Random, median: float, sigma: float = SIGMA, low: int = 1) -> int:
    """One length drawn from a log-normal with the given median, at least `low`."""
    return max(low, round(rng.lognormvariate(math.log(median), sigma)))


def random_ids(rng: random.Random, n: int, vocab_size: int) -> list[int]:
    return [rng.randrange(FIRST_ORDINARY_ID, vocab_size) for _ in range(n)]


def reference_pairs(n: int, vocab_size: int, end_id: int, seed: int = 0, cap: int = CPU_CAP,
                    prompt_median: float = CPU_PROMPT_MEDIAN, answer_median: float = CPU_ANSWER_MEDIAN,
                    sigma: float = SIGMA) -> list[tuple[list[int], list[int]]]:
    """`n` preference pairs (chosen_ids, rejected_ids) of the reference shape: one log-normal prompt shared
    by both sides (at most half the cap), one log-normal answer per side, each side cut to `cap` tokens and
    ending on `end_id` (the end-of-turn token a reward head reads at)."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        prompt = random_ids(rng, min(lognormal_length(rng, prompt_median, sigma), cap // 2), vocab_size)
        sides = []
        for _side in range(2):
            answer = min(lognormal_length(rng, answer_median, sigma), cap - len(prompt))
            sides.append(prompt + random_ids(rng, answer - 1, vocab_size) + [end_id])  # end-of-turn ends it
        pairs.append((sides[0], sides[1]))
    return pairs
