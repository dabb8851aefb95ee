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


def packed_row(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids, positions restarting at each sequence, the index of each sequence's last token) of one packed row."""
    ids = [t for s in seqs for t in s]
    pos = [p for s in seqs for p in range(len(s))]
    read = torch.tensor([sum(len(s) for s in seqs[:k + 1]) - 1 for k in range(len(seqs))])
    return torch.tensor([ids]), torch.tensor([pos]), read


def test_packed_rewards_equal_single_sequence_forward(rm, smol_tokenizer):
    seqs = sequences(smol_tokenizer)
    ids, pos, read = packed_row(seqs)
    with torch.no_grad():
        packed = packed_rewards(rm, ids, pos, read)
    single = [single_forward(rm, s) for s in seqs]
    assert packed.tolist() == pytest.approx(single, abs=1e-4)
    # the same row without position resets lets later sequences attend to earlier ones: it must differ
    with torch.no_grad():
        leaky = packed_rewards(rm, ids, torch.arange(ids.shape[1])[None], read)
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


def padded(seqs, pad, side):
    width = max(len(s) for s in seqs)
    fill = [[pad] * (width - len(s)) for s in seqs]
    rows = [s + f if side == "right" else f + s for s, f in zip(seqs, fill, strict=True)]
    masks = [[1] * len(s) + [0] * len(f) if side == "right" else [0] * len(f) + [1] * len(s)
             for s, f in zip(seqs, fill, strict=True)]
    return torch.tensor(rows), torch.tensor(masks)


def test_saved_rm_loads_and_hf_forward_reads_where_we_read(rm, smol_tokenizer, tmp_path):
    seqs = sequences(smol_tokenizer)
    read_ids = {s[-1] for s in seqs}
    assert read_ids == {smol_tokenizer.convert_tokens_to_ids("Ċ")}  # ChatML's text ends after <|im_end|>
    tok = smol_tokenizer.__class__.from_pretrained(smol_tokenizer.name_or_path)
    tok.pad_token = smol_tokenizer.pad_token
    save_reward_model(rm, tok, tmp_path / "rm", read_ids)
    assert (tmp_path / "rm" / "model.safetensors").is_file()
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "rm").eval()
    assert type(loaded).__name__ == "LlamaForSequenceClassification" and loaded.config.num_labels == 1
    assert loaded.config.reward_read_position == "end_of_chat_template"
    assert loaded.config.pad_token_id == smol_tokenizer.pad_token_id  # <|im_end|>: never the last token
    ours = [single_forward(rm, s) for s in seqs]
    for side in ("right", "left"):
        ids, mask = padded(seqs, loaded.config.pad_token_id, side)
        with torch.no_grad():
            hf = loaded(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, 0]
        assert hf.tolist() == pytest.approx(ours, abs=1e-4), side


def test_a_pad_token_that_ends_the_text_is_replaced(smol_tokenizer):
    from chatalign.reward.model import distinct_pad_id, template_end_token_ids

    im_end = smol_tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert template_end_token_ids(smol_tokenizer) == {smol_tokenizer.convert_tokens_to_ids("Ċ")}
    assert distinct_pad_id(smol_tokenizer, {smol_tokenizer.convert_tokens_to_ids("Ċ")}) == im_end
    # a template ending on <|im_end|> (as Llama 2's ends on </s>): HF would read the token before it
    assert distinct_pad_id(smol_tokenizer, {im_end}) == smol_tokenizer.convert_tokens_to_ids("<|endoftext|>")


def test_an_rm_run_trained_to_be_read_elsewhere_is_refused(rm, smol_tokenizer, tmp_path):
    import json

    from chatalign.errors import UserError
    from chatalign.models import save_hf_atomic
    from chatalign.reward.scorer import load_scorer

    rm.config.architectures = [type(rm).__name__]
    save_hf_atomic(rm, smol_tokenizer, tmp_path / "run" / "model")  # as an older chatalign saved it
    assert load_scorer(tmp_path / "run" / "model", device="cpu")  # no manifest: any HF RM, read the usual way
    (tmp_path / "run" / "manifest.json").write_text(json.dumps({"stage": "reward"}))
    for path in (tmp_path / "run", tmp_path / "run" / "model"):
        with pytest.raises(UserError, match="end-of-turn token.*train it again"):
            load_scorer(path, device="cpu")


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


def test_an_rm_saved_earlier_continues_with_its_trained_head(rm, smol_tokenizer, tmp_path):
    """A round's RM retrained from the previous round's (model.name: an RM run, sec. 3.2.1's weekly refresh):
    loading it keeps the trained head, so training continues where it stopped instead of from a new head."""
    from chatalign.reward.model import load_reward_model

    save_reward_model(rm, smol_tokenizer, tmp_path / "rm")
    again = load_reward_model(tmp_path / "rm", dtype="float32", seed=123)
    assert torch.equal(again.score.weight, rm.score.weight)
    ids, pos, read = packed_row(sequences(smol_tokenizer))
    with torch.no_grad():
        before = packed_rewards(rm, ids, pos, read)
        after = packed_rewards(again.eval(), ids, pos, read)
    assert after.tolist() == pytest.approx(before.tolist(), abs=1e-5)
