"""Per-document attention for padding-free packed rows.

A packed row of T tokens holding documents of lengths n_1..n_k needs only sum(n_i^2)/2 attention scores, but
transformers' SDPA path turns packed `position_ids` into a dense [T, T] block-diagonal mask and computes all
T^2 of them (about 90% wasted at seq 1024 with ~70-token chat examples). Registered as the attention
implementation `chatalign_packed`: when the caller passes the document bounds (`packed_bounds`), each layer
runs causal SDPA per document and no [T, T] mask is built (packed_decoder_forward); otherwise (generation,
padded batches) it is exactly transformers' SDPA.
"""

from __future__ import annotations

import contextvars

import torch
import torch.nn.functional as F

PACKED_ATTENTION = "chatalign_packed"
_registered = False
# Set while packed_decoder_forward runs a decoder with document bounds: no layer then reads the mask
_bounds_passed = contextvars.ContextVar("chatalign_packed_bounds_passed", default=False)


def document_bounds(position_ids: torch.Tensor) -> tuple[int, ...]:
    """Start offsets of the documents of a [1, T] packed row (where positions restart at 0), plus T."""
    flat = position_ids.reshape(-1)
    starts = (flat == 0).nonzero(as_tuple=True)[0].tolist()
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    return (*starts, flat.numel())


def packed_sdpa_forward(module, query, key, value, attention_mask, dropout: float = 0.0,
                        scaling: float | None = None, packed_bounds: tuple[int, ...] | None = None, **kwargs):
    """Causal SDPA document by document; query/key/value are [1, heads, T, head_dim]."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if packed_bounds is None or query.shape[0] != 1 or query.shape[2] != key.shape[2]:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    gqa = query.shape[1] != key.shape[1]
    outs = []
    for start, end in zip(packed_bounds[:-1], packed_bounds[1:], strict=True):
        outs.append(F.scaled_dot_product_attention(
            query[:, :, start:end], key[:, :, start:end], value[:, :, start:end],
            dropout_p=dropout, is_causal=True, scale=scaling, enable_gqa=gqa))
    out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)
    return out.transpose(1, 2).contiguous(), None


def _packed_mask(*args, **kwargs):
    # Under packed_decoder_forward every layer attends document by document (is_causal per document), so
    # the dense [T, T] block-diagonal mask transformers would build for the packed row is never read: skip
    # it (64 MiB and ~0.25 s of CPU a forward at T = 8192). Generation and padded batches (no bounds) still
    # need SDPA's mask, so build it as SDPA would.
    if _bounds_passed.get():
        return None
    from transformers.masking_utils import sdpa_mask

    return sdpa_mask(*args, **kwargs)


def register_packed_attention() -> str:
    """Register `chatalign_packed` with transformers (idempotent) and return its name."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface

        AttentionInterface.register(PACKED_ATTENTION, packed_sdpa_forward)
        AttentionMaskInterface.register(PACKED_ATTENTION, _packed_mask)
        _registered = True
    return PACKED_ATTENTION


def default_attention(name: str | None) -> str | None:
    """The attention implementation to load a model with: ours unless the recipe names one ("sdpa", ...)."""
    if name is None or name == "packed":
        return register_packed_attention()
    return name


def packed_decoder_forward(decoder, input_ids: torch.Tensor, position_ids: torch.Tensor):
    """Run a decoder (e.g. LlamaModel) over a padding-free packed row without cross-document attention."""
    if getattr(decoder.config, "_attn_implementation", None) != PACKED_ATTENTION or input_ids.shape[0] != 1:
        return decoder(input_ids=input_ids, position_ids=position_ids, use_cache=False)
    token = _bounds_passed.set(True)
    try:
        return decoder(input_ids=input_ids, position_ids=position_ids, use_cache=False,
                       packed_bounds=document_bounds(position_ids))
    finally:
        _bounds_passed.reset(token)
