"""Causal-LM loss on packed rows that runs the LM head only on trained positions.

The full-vocabulary logits of every position are the largest activation of a small model (49k vocab);
prompt tokens need none, so hidden states are gathered at labelled positions first.
"""

from __future__ import annotations

import torch
from torch import nn

from chatalign.text.packing import IGNORE
from chatalign.training.packed_attention import packed_decoder_forward


def unwrap_causal_lm(model: nn.Module) -> nn.Module:
    """The `XForCausalLM` under a peft wrapper (LoRA layers stay injected in it)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def decoder_and_head(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    lm = unwrap_causal_lm(model)
    decoder = getattr(lm, lm.base_model_prefix, None) if hasattr(lm, "base_model_prefix") else None
    head = lm.get_output_embeddings()
    if decoder is None or head is None:
        raise TypeError(f"{type(lm).__name__}: cannot find the decoder and LM head")
    return decoder, head


def selected_token_nll(hidden: torch.Tensor, head: nn.Module, labels: torch.Tensor,
                       chunk: int = 4096) -> torch.Tensor:
    """Sum of -log p(label) over positions whose label is not IGNORE, computed in chunks of positions."""
    flat_h = hidden.reshape(-1, hidden.shape[-1])
    flat_y = labels.reshape(-1)
    idx = (flat_y != IGNORE).nonzero(as_tuple=True)[0]
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, idx.numel(), chunk):
        sel = idx[start:start + chunk]
        logits = head(flat_h[sel]).float()
        total = total + nn.functional.cross_entropy(logits, flat_y[sel], reduction="sum")
    return total


class PackedLMLoss(nn.Module):
    """Wraps a causal LM so that DeepSpeed sees one module whose forward returns the summed token NLL."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, position_ids, labels, **_):
        decoder, head = decoder_and_head(self.model)
        device = decoder.get_input_embeddings().weight.device  # the loop collates on the CPU
        out = packed_decoder_forward(decoder, input_ids.to(device), position_ids.to(device))
        return selected_token_nll(out.last_hidden_state, head, labels.to(device))
