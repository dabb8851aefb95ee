"""Seeded draws for code that only knows torch's global generator.

Hugging Face's `from_pretrained` (a new head's init) and peft's `get_peft_model` (the LoRA A matrices) draw
from torch's global CPU generator and take no generator argument. Reseeding that global generator from
library code would change the random stream of whoever called us (a pipeline runs every stage in one
process). `drawing_from(g)` runs such code on `g`'s stream instead: the draws are exactly those a global
generator seeded like `g` would give, they advance `g`, and the global generator is left as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def drawing_from(generator) -> Iterator[None]:
    """Within the block, torch's global CPU generator continues `generator`'s stream (CUDA generators are
    not touched); afterwards `generator` holds the advanced state and the global one its old state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.set_state(generator.get_state())
        try:
            yield
        finally:
            generator.set_state(torch.random.default_generator.get_state())
