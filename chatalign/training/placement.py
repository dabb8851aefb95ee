"""Where a model to be trained lives before training starts."""

from __future__ import annotations


def place_for_training(model, dist, *, quantized: bool, engine_places: bool):
    """On this rank's GPU when there is one; left where it is when a DeepSpeed engine will place it
    (`engine_places`) or 4-bit loading already put it on the GPU (`quantized`). Returns the model."""
    import torch

    if torch.cuda.is_available() and not engine_places and not quantized:
        model.to(f"cuda:{dist.local_rank}")
    return model
