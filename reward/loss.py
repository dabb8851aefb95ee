"""The reward model's binary ranking loss with a margin."""

from __future__ import annotations


def ranking_loss(r_chosen, r_rejected, margin=None):
    """Per-pair -log(sigmoid(r_c - r_r - m)), Llama 2 eq. 2 (m = 0: InstructGPT's eq. 1); not reduced."""
    import torch.nn.functional as F

    diff = r_chosen - r_rejected
    if margin is not None:
        diff = diff - margin
    return -F.logsigmoid(diff)
