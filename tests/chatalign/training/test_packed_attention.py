import pytest
import torch

from chatalign.text.packing import collate_rows, pack_examples
from chatalign.training.lm_loss import PackedLMLoss
from chatalign.training.packed_attention import (
    PACKED_ATTENTION,
    default_attention,
    document_bounds,
    packed_decoder_forward,
    register_packed_attention,
)


def test_document_bounds_from_position_resets():
    pos = torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3]])
    assert document_bounds(pos) == (0, 3, 5, 9)
    assert document_bounds(torch.tensor([[0, 1, 2]])) == (0, 3)


def test_default_attention_is_ours_unless_named():
    assert default_attention(None) == PACKED_ATTENTION
    assert default_attention("packed") == PACKED_ATTENTION
    assert default_attention("eager") == "eager"


def _packed_batch(vocab, lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    examples = []
    for n in lengths:
        ids = torch.randint(5, vocab, (n,), generator=g).tolist()
        examples.append((ids, [0] * (n // 3) + [1] * (n - n // 3)))
    rows = pack_examples(examples, sum(lengths))
    assert len(rows) == 1
    return collate_rows(rows)


def _loss_and_grads(model, impl, batch):
    model.config._attn_implementation = impl
    model.zero_grad()
    loss = PackedLMLoss(model)(**batch)
    loss.backward()
    return float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters()}


def test_per_document_attention_matches_sdpa_loss_and_gradients(tiny_model):
    """The fast path must train exactly what transformers' SDPA (block-diagonal mask) trains."""
    register_packed_attention()
    batch = _packed_batch(tiny_model.config.vocab_size, [17, 5, 30, 9, 1 + 1])
    ref_loss, ref_grads = _loss_and_grads(tiny_model, "sdpa", batch)
    loss, grads = _loss_and_grads(tiny_model, PACKED_ATTENTION, batch)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    for name, g in ref_grads.items():
        assert torch.allclose(grads[name], g, rtol=1e-4, atol=1e-6), name


def test_without_bounds_it_is_plain_sdpa_for_padded_generation(tiny_model):
    register_packed_attention()
    tiny_model.eval()
    ids = torch.tensor([[0, 0, 7, 8, 9], [3, 4, 5, 6, 7]])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    with torch.no_grad():
        tiny_model.config._attn_implementation = "sdpa"
        ref = tiny_model(input_ids=ids, attention_mask=mask).logits
        tiny_model.config._attn_implementation = PACKED_ATTENTION
        ours = tiny_model(input_ids=ids, attention_mask=mask).logits
    assert torch.allclose(ours[mask.bool()], ref[mask.bool()], atol=1e-5)


def _masks_seen_by_first_layer(decoder):
    seen = []

    def hook(_module, args, kwargs):
        seen.append(kwargs.get("attention_mask"))

    return seen, decoder.layers[0].register_forward_pre_hook(hook, with_kwargs=True)


def test_packed_forward_builds_no_dense_mask_and_plain_calls_still_do(tiny_model):
    """With document bounds every layer attends per document: the [T, T] mask transformers would build for a
    packed row is never read, so none is built; a plain forward of the same row (no bounds) still gets it."""
    register_packed_attention()
    tiny_model.config._attn_implementation = PACKED_ATTENTION
    batch = _packed_batch(tiny_model.config.vocab_size, [7, 4, 9])
    decoder = tiny_model.model
    seen, handle = _masks_seen_by_first_layer(decoder)
    try:
        with torch.no_grad():
            fast = packed_decoder_forward(decoder, batch["input_ids"], batch["position_ids"]).last_hidden_state
            plain = decoder(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                            use_cache=False).last_hidden_state
    finally:
        handle.remove()
    assert seen[0] is None
    assert seen[1] is not None and tuple(seen[1].shape[-2:]) == (20, 20)  # the flag did not outlive the call
    assert torch.allclose(fast, plain, atol=1e-5)  # plain SDPA with the block-diagonal mask: same states
