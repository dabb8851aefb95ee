"""Running a model for inference only: eval mode under `torch.inference_mode`, with the caller's train/eval
mode given back afterwards (PPO hands its policy to the rollout engine between two updates)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def inference(model) -> Iterator[None]:
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)
