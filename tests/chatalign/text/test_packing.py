import pytest
import torch

from chatalign.text.packing import IGNORE, build_row, collate_rows, pack_bins, pack_examples, step_plan
from chatalign.training.lm_loss import PackedLMLoss


def test_pack_bins_best_fit_decreasing():
    # 7 goes first into bin0 (left 3), 5 into bin1 (left 5), 4 into bin1 (left 1), 3 into bin0 (left 0), 2 -> bin2
    assert pack_bins([3, 7, 5, 4, 2], 10) == [[1, 0], [2, 3], [4]]


def test_pack_bins_rejects_overlong():
    with pytest.raises(ValueError, match="more than the row budget"):
        pack_bins([11], 10)


def test_build_row_labels_shifted_and_position_resets():
    row = build_row([([1, 2, 3], [0, 1, 1]), ([4, 5], [0, 1])], [0, 1])
    assert row.input_ids == [1, 2, 3, 4, 5]
    assert row.position_ids == [0, 1, 2, 0, 1]
    # position t predicts token t+1 of the same example, only where that token is trained
    assert row.labels == [2, 3, IGNORE, 5, IGNORE]
    assert row.n_trained == 3


def test_step_plan_is_seeded_and_covers_every_row_each_epoch():
    plan = step_plan(10, 4, 2, seed=3)
    assert [len(s) for s in plan] == [4, 4, 2, 4, 4, 2]
    assert sorted(i for s in plan[:3] for i in s) == list(range(10))
    assert plan == step_plan(10, 4, 2, seed=3)
    assert plan != step_plan(10, 4, 2, seed=4)


def _examples(vocab, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        length = 6 + 3 * i
        ids = torch.randint(5, vocab, (length,), generator=g).tolist()
        mask = [0] * (length // 2) + [1] * (length - length // 2)
        out.append((ids, mask))
    return out


@pytest.mark.parametrize("attn", ["sdpa", "eager", "chatalign_packed"])
def test_packed_loss_equals_examples_one_by_one(tiny_model, attn):
    """Packing must not let an example attend to another: packed NLL == sum of separate NLLs."""
    from chatalign.training.packed_attention import register_packed_attention

    register_packed_attention()
    tiny_model.config._attn_implementation = attn
    tiny_model.eval()
    loss = PackedLMLoss(tiny_model)
    examples = _examples(tiny_model.config.vocab_size)
    with torch.no_grad():
        separate = [float(loss(**collate_rows([build_row([e], [0])]))) for e in examples]
        packed_rows = pack_examples(examples, 64)
        assert len(packed_rows) == 1 and len(packed_rows[0].example_ids) == 4
        packed = float(loss(**collate_rows(packed_rows)))
    assert packed == pytest.approx(sum(separate), rel=1e-5)


def test_packed_loss_matches_hf_loss_on_single_example(tiny_model):
    tiny_model.eval()
    ids, mask = _examples(tiny_model.config.vocab_size, n=1)[0]
    batch = collate_rows([build_row([(ids, mask)], [0])])
    with torch.no_grad():
        ours = float(PackedLMLoss(tiny_model)(**batch)) / sum(mask[1:])
        hf_labels = torch.tensor([[t if m else -100 for t, m in zip(ids, mask, strict=True)]])
        ref = float(tiny_model(input_ids=torch.tensor([ids]), labels=hf_labels).loss)
    assert ours == pytest.approx(ref, rel=1e-5)


def test_cache_on_leaks_across_examples(tiny_model):
    """Pins the transformers behaviour DESIGN.md warns about: with an attention mask, packing leaks."""
    tiny_model.eval()
    a, b = _examples(tiny_model.config.vocab_size, n=2)
    row = build_row([a, b], [0, 1])
    ids = torch.tensor([row.input_ids])
    pos = torch.tensor([row.position_ids])
    with torch.no_grad():
        isolated = tiny_model(input_ids=ids, position_ids=pos, use_cache=False).logits
        leaky = tiny_model(input_ids=ids, position_ids=pos, attention_mask=torch.ones_like(ids)).logits
        alone = tiny_model(input_ids=torch.tensor([b[0]])).logits
    n_a = len(a[0])
    assert torch.allclose(isolated[0, n_a:], alone[0], atol=1e-4)
    assert not torch.allclose(leaky[0, n_a:], alone[0], atol=1e-4)
