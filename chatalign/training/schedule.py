"""Learning-rate schedules as pure functions of the step (so a resumed run needs no scheduler state)."""

from __future__ import annotations

import math


def warmup_steps_for(total_steps: int, warmup_ratio: float, min_warmup: int = 0) -> int:
    """Llama 2 RM recipe: warmup 3% of steps, at least 5 (sec. 3.2.2); capped at the run length."""
    return min(total_steps, max(min_warmup, int(math.ceil(total_steps * warmup_ratio))))


def lr_factor(step: int, total_steps: int, warmup: int, kind: str = "cosine", min_ratio: float = 0.0) -> float:
    """Multiplier on the peak lr at optimizer step `step` (0-based): linear warmup, then cosine/linear/constant
    decay towards `min_ratio` of the peak at the end of the run (Llama 2 sec. 3.1: cosine; sec. 3.2.2: to 10%)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    span = max(1, total_steps - warmup)  # the last step keeps a little lr instead of a wasted lr=0 step
    progress = min(1.0, max(0.0, (step - warmup) / span))
    if kind == "linear":
        decay = 1.0 - progress
    elif kind == "cosine":
        decay = 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        raise ValueError(f"unknown schedule {kind!r}")
    return min_ratio + (1.0 - min_ratio) * decay
