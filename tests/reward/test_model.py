"""The RM forward on packed rows equals a per-sequence forward; save/load as an HF sequence classifier."""

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from chatalign.reward.model import (
    PackedRewardLoss,
    freeze_lower_layers,
    packed_rewards,
    save_reward_model,
)
from chatalign.reward.pairs import PairExample, collate_pairs, encode_answers, plan_rows

from ..conftest import reward_model_from_causal_lm


@pytest.fixture()
def rm(tiny_model):
    return reward_model_from_causal_lm(tiny_model, seed=1).eval()


def sequences(tok):
    prompts = [[{"role": "user", "content": q}] for q in ("What is 2+2?", "Name a color.", "Hi", "Say no.")]
    return encode_answers(tok, prompts, ["4", "Blue, or maybe a deep green.", "Hello! How are you?", "No."])


def single_forward(rm, ids):
    """The plain HF forward of one unpadded sequence (pad id unset: it reads the last token)."""
    rm.config.pad_token_id = None
    with torch.no_grad():
        return rm(input_ids=torch.tensor([ids]), use_cache=False).logits[0, 0].item()


def test_packed_rewards_equal_single_sequence_forward(rm, smol_tokenizer):
    seqs = sequences(smol_tokenizer)
    ids = [t for s in seqs for t in s]
    pos = [p for s in seqs for p in range(len(s))]
    read = torch.tensor([sum(len(s) for s in seqs[:k + 1]) - 1 for k in range(len(seqs))])
    with torch.no_grad():
        packed = packed_rewards(rm, torch.tensor([ids]), torch.tensor([pos]), read)
    single = [single_forward(rm, s) for s in seqs]
    assert packed.tolist() == pytest.approx(single, abs=1e-4)
    # the same row without position resets lets later sequences attend to earlier ones: it must differ
    with torch.no_grad():
        leaky = packed_rewards(rm, torch.tensor([ids]), torch.arange(len(ids))[None], read)
    assert (leaky[1:] - packed[1:]).abs().max() > 1e-3


def test_loss_module_sums_pair_losses(rm, smol_tokenizer):
    seqs = sequences(smol_tokenizer)
    pairs = [PairExample(seqs[0], seqs[1], 1.0, "none", "s", "unlabelled"),
             PairExample(seqs[2], seqs[3], 0.0, "none", "s", "unlabelled")]
    rows, _ = plan_rows(pairs, 2, 512, 1, seed=0)
    batch = collate_pairs(rows)
    ordered = [p for r in rows for p in r.pairs]
    with torch.no_grad():
        loss, aux = PackedRewardLoss(rm)(**batch)
    r = {tuple(s): single_forward(rm, s) for s in seqs}
    expected = sum(torch.nn.functional.softplus(torch.tensor(-(r[tuple(p.chosen_ids)] - r[tuple(p.rejected_ids)]
                                                                - p.margin))).item() for p in ordered)
    assert loss.item() == pytest.approx(expected, abs=1e-4)
    assert aux["pairs_seen"] == 2 and aux["correct"] == sum(r[tuple(p.chosen_ids)] > r[tuple(p.rejected_ids)]
                                                            for p in ordered)


def test_saved_rm_loads_and_hf_forward_reads_where_we_read(rm, smol_tokenizer, tmp_path):
    seqs = sequences(smol_tokenizer)
    read_ids = {s[-1] for s in seqs}
    assert smol_tokenizer.pad_token_id in read_ids  # SmolLM2: pad == <|im_end|>, the token we read at
    tok = smol_tokenizer.__class__.from_pretrained(smol_tokenizer.name_or_path)
    tok.pad_token = smol_tokenizer.pad_token
    save_reward_model(rm, tok, tmp_path / "rm", read_ids)
    assert (tmp_path / "rm" / "model.safetensors").is_file()
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "rm").eval()
    assert type(loaded).__name__ == "LlamaForSequenceClassification" and loaded.config.num_labels == 1
    assert loaded.config.pad_token_id not in read_ids
    width = max(len(s) for s in seqs)
    pad = loaded.config.pad_token_id
    batch = torch.tensor([s + [pad] * (width - len(s)) for s in seqs])
    with torch.no_grad():
        hf = loaded(input_ids=batch, attention_mask=(batch != pad).long(), use_cache=False).logits[:, 0]
        ours = [single_forward(rm, s) for s in seqs]
    assert hf.tolist() == pytest.approx(ours, abs=1e-4)


def test_freeze_lower_layers_trains_only_the_top(rm):
    names = freeze_lower_layers(rm, 1)
    assert any(n.startswith("model.layers.1.") for n in names) and "score.weight" in names
    assert not any(n.startswith(("model.layers.0.", "model.embed_tokens")) for n in names)
    assert "model.norm.weight" in names


def test_the_head_init_is_seeded_and_leaves_the_global_generator_alone(tiny_model_dir):
    from chatalign.reward.model import load_reward_model

    torch.manual_seed(99)
    before = torch.get_rng_state()
    first = load_reward_model(tiny_model_dir, "float32", seed=3).score.weight
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(load_reward_model(tiny_model_dir, "float32", seed=3).score.weight, first)
    assert not torch.equal(load_reward_model(tiny_model_dir, "float32", seed=4).score.weight, first)
    g = torch.Generator().manual_seed(3)
    assert torch.equal(load_reward_model(tiny_model_dir, "float32", generator=g).score.weight, first)
    assert not torch.equal(g.get_state(), torch.Generator().manual_seed(3).get_state())  # the draw advanced g
    torch.manual_seed(3)  # what the loader itself did before it took a generator: the same head
    from transformers import AutoModelForSequenceClassification

    reseeded = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1, dtype=torch.float32)
    assert torch.equal(reseeded.score.weight, first)
