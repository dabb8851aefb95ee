"""The rollout engine against `model.generate` and against fresh full forward passes, on a tiny Llama."""

import pytest
import torch

from chatalign.errors import ConfigError, DataError
from chatalign.rollout.engine import default_stop_token_ids, generate_rollouts
from chatalign.rollout.logprobs import sequence_logprobs
from chatalign.rollout.sampling import CDF_BLOCK, choose_tokens, next_tokens, token_logprobs

TEXTS = ["Hello there", "What is the capital of France? Please answer briefly.", "a",
         "One two three four five six seven eight nine ten", "Write a haiku", "Why?"]
NEW = 12

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def prompts(smol_tokenizer):
    return [smol_tokenizer.encode(t) for t in TEXTS]


@pytest.fixture(scope="module")
def hf_greedy(sharp_model, smol_tokenizer, prompts):
    """`generate(do_sample=False)` on one left-padded batch of all prompts, no stop token."""
    smol_tokenizer.padding_side = "left"
    enc = smol_tokenizer.pad({"input_ids": prompts}, return_tensors="pt")
    with torch.no_grad():
        out = sharp_model.generate(**enc, max_new_tokens=NEW, do_sample=False, eos_token_id=None,
                                   pad_token_id=smol_tokenizer.pad_token_id)
    return [row[enc["input_ids"].shape[1]:].tolist() for row in out]


def fresh_logprobs(model, prompt, response):
    with torch.no_grad():
        logits = model(torch.tensor([prompt + response])).logits[0].float()
    lp = torch.log_softmax(logits[len(prompt) - 1:-1], dim=-1)
    return lp.gather(-1, torch.tensor(response).unsqueeze(-1)).squeeze(-1)


def pick_stop(hf_greedy):
    """A token that ends some answers early (at position >= 2) and never occurs in others."""
    for row in hf_greedy:
        for tok in row[2:NEW - 2]:
            hits = [tok in r for r in hf_greedy]
            if 0 < sum(hits) < len(hits):
                return tok
    raise AssertionError("no suitable stop token in the greedy answers")


def cut(row, stop):
    return row[:row.index(stop) + 1] if stop in row else row


def test_greedy_matches_generate_with_stops_refill_and_exact_logprobs(sharp_model, smol_tokenizer, prompts,
                                                                      hf_greedy):
    stop = pick_stop(hf_greedy)
    stats = {}
    # batch_size 4 < 6 prompts of lengths 1..11: rows finish at different steps, leave, and are refilled.
    rs = generate_rollouts(sharp_model, smol_tokenizer, prompts, max_new_tokens=NEW, temperature=0,
                           batch_size=4, stop_token_ids=[stop], stats=stats)
    assert [(r.prompt_index, r.sample_index) for r in rs] == [(i, 0) for i in range(len(prompts))]
    assert len({len(p) for p in prompts}) >= 4  # really different lengths, so left padding is exercised
    for r, want in zip(rs, hf_greedy):
        assert r.prompt_ids == prompts[r.prompt_index]
        assert r.response_ids == cut(want, stop)
        assert r.finished == (stop in want)
        assert r.text == smol_tokenizer.decode(r.response_ids, skip_special_tokens=True)
        assert torch.allclose(torch.tensor(r.logprobs), fresh_logprobs(sharp_model, r.prompt_ids, r.response_ids),
                              atol=1e-4, rtol=0)
    assert any(r.finished for r in rs) and not all(r.finished for r in rs)
    # Finished rows stop costing: every decode row-step made one token of a live answer (the first token
    # of each answer comes from the prefill).
    assert stats["decode_row_steps"] == sum(len(r.response_ids) - 1 for r in rs)
    assert stats["prefill_calls"] >= 2


def test_prefill_in_groups_and_k_samples_match_generate(sharp_model, smol_tokenizer, prompts, hf_greedy,
                                                       monkeypatch):
    import chatalign.rollout.batch as rb

    # Every distinct length its own prefill forward (the real threshold only splits prompts of ~2k tokens).
    monkeypatch.setattr(rb, "PREFILL_MIN_TOKENS", 1)
    stop = pick_stop(hf_greedy)
    stats = {}
    rs = generate_rollouts(sharp_model, smol_tokenizer, prompts, num_samples=2, max_new_tokens=NEW, temperature=0,
                           batch_size=7, stop_token_ids=[stop], stats=stats)
    assert stats["prefill_tokens"] < sum(max(map(len, prompts)) for _ in range(stats["prefill_calls"]))
    for r in rs:
        assert r.response_ids == cut(hf_greedy[r.prompt_index], stop)
        assert torch.allclose(torch.tensor(r.logprobs), fresh_logprobs(sharp_model, r.prompt_ids, r.response_ids),
                              atol=1e-4, rtol=0)


@pytest.mark.parametrize("top_p", [1.0, 0.9])
def test_logprobs_at_temperature_one_are_the_policy(sharp_model, smol_tokenizer, prompts, top_p):
    # T = 1 takes the log-normaliser from the sampling's own exponentials (PPO's setting)
    rs = generate_rollouts(sharp_model, smol_tokenizer, prompts, max_new_tokens=6, temperature=1.0, top_p=top_p,
                           batch_size=4, seed=3, stop_token_ids=[])
    for r in rs:
        assert torch.allclose(torch.tensor(r.logprobs), fresh_logprobs(sharp_model, r.prompt_ids, r.response_ids),
                              atol=1e-4, rtol=0)
    x = torch.randn(8, 3000, generator=torch.Generator().manual_seed(0)) * 4
    tokens, lps = choose_tokens(x, 1.0, top_p, torch.Generator().manual_seed(1), with_logprobs=True)
    assert torch.allclose(lps, torch.log_softmax(x, -1).gather(-1, tokens[:, None]).squeeze(-1), atol=1e-5)


def test_static_cache_loop_matches_generate(sharp_model, smol_tokenizer, prompts, hf_greedy):
    stop = pick_stop(hf_greedy)
    # batch_size 2: three batches of one cache shape, so the later ones reuse (reset) the first one's cache
    rs = generate_rollouts(sharp_model, smol_tokenizer, prompts, max_new_tokens=NEW, temperature=0,
                           batch_size=2, stop_token_ids=[stop], static_cache=True)
    for r, want in zip(rs, hf_greedy):
        assert r.response_ids == cut(want, stop)
        assert torch.allclose(torch.tensor(r.logprobs), fresh_logprobs(sharp_model, r.prompt_ids, r.response_ids),
                              atol=1e-4, rtol=0)


def test_sampled_logprobs_are_the_untempered_policy(sharp_model, smol_tokenizer, prompts):
    rs = generate_rollouts(sharp_model, smol_tokenizer, prompts[:3], num_samples=2, max_new_tokens=8,
                           temperature=0.7, top_p=0.9, batch_size=3, seed=1, stop_token_ids=[])
    for r in rs:
        assert len(r.logprobs) == len(r.response_ids) == 8 and not r.finished
        want = fresh_logprobs(sharp_model, r.prompt_ids, r.response_ids)
        assert torch.allclose(torch.tensor(r.logprobs), want, atol=1e-4, rtol=0)


def test_k_samples_seeds_and_lengths(sharp_model, smol_tokenizer, prompts):
    kw = dict(num_samples=3, max_new_tokens=6, temperature=1.0, batch_size=4, stop_token_ids=[])
    a = generate_rollouts(sharp_model, smol_tokenizer, prompts[:2], seed=7, **kw)
    b = generate_rollouts(sharp_model, smol_tokenizer, prompts[:2], seed=7, **kw)
    c = generate_rollouts(sharp_model, smol_tokenizer, prompts[:2], seed=8, **kw)
    assert [(r.prompt_index, r.sample_index) for r in a] == [(p, s) for p in range(2) for s in range(3)]
    assert [r.response_ids for r in a] == [r.response_ids for r in b]
    assert [r.response_ids for r in a] != [r.response_ids for r in c]
    assert all(len(r.response_ids) == 6 and not r.finished for r in a)
    # samples of one prompt share its prefill but are drawn independently
    assert len({tuple(r.response_ids) for r in a if r.prompt_index == 0}) > 1
    assert all(r.prompt_ids == prompts[r.prompt_index] for r in a)


def test_one_new_token_and_training_mode_restored(sharp_model, smol_tokenizer, prompts, hf_greedy):
    sharp_model.train()
    try:
        rs = generate_rollouts(sharp_model, smol_tokenizer, prompts, max_new_tokens=1, temperature=0,
                               batch_size=2, stop_token_ids=[], progress=True)
        assert sharp_model.training
    finally:
        sharp_model.eval()
    assert [r.response_ids for r in rs] == [row[:1] for row in hf_greedy]


def test_default_stops_end_on_im_end(smol_tokenizer, sharp_model, prompts, hf_greedy):
    import copy

    im_end = smol_tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end in default_stop_token_ids(smol_tokenizer)
    assert smol_tokenizer.eos_token_id in default_stop_token_ids(smol_tokenizer)
    # Make <|im_end|> the greedy first answer token of prompt 0: give it twice the LM-head row of the token
    # greedy decoding picks there (whose logit is positive), so its logit is twice the former maximum.
    model = copy.deepcopy(sharp_model)
    first = hf_greedy[0][0]
    with torch.no_grad():
        model.lm_head.weight[im_end] = 2.0 * model.lm_head.weight[first]
    r = generate_rollouts(model, smol_tokenizer, prompts[:1], max_new_tokens=5, temperature=0)[0]
    assert r.finished and r.response_ids == [im_end] and r.text == ""
    # without the default stops the same answer runs on to max_new_tokens
    r = generate_rollouts(model, smol_tokenizer, prompts[:1], max_new_tokens=5, temperature=0, stop_token_ids=[])[0]
    assert not r.finished and len(r.response_ids) == 5 and r.response_ids[0] == im_end


def test_bad_arguments_are_user_errors(sharp_model, smol_tokenizer):
    with pytest.raises(DataError, match="prompt 1"):
        generate_rollouts(sharp_model, smol_tokenizer, [[1, 2], []])
    for bad in (dict(num_samples=0), dict(max_new_tokens=0), dict(temperature=-1), dict(top_p=0.0),
                dict(batch_size=0), dict(compile=True, static_cache=False)):
        with pytest.raises(ConfigError):
            generate_rollouts(sharp_model, smol_tokenizer, [[1, 2]], **bad)
    assert generate_rollouts(sharp_model, smol_tokenizer, []) == []


def test_top_p_and_temperature_sample_the_right_distribution():
    probs = torch.tensor([0.5, 0.25, 0.15, 0.07, 0.03])
    logits = probs.log().expand(40000, 5)
    g = torch.Generator().manual_seed(0)
    # nucleus at 0.8: masses before each token are 0, .5, .75, .9, .97 -> keep the first three
    freq = torch.bincount(next_tokens(logits, 1.0, 0.8, g), minlength=5).float() / 40000
    assert torch.allclose(freq, torch.tensor([0.5, 0.25, 0.15, 0.0, 0.0]) / 0.9, atol=0.01)
    assert freq[3] == 0 and freq[4] == 0
    # temperature 2 flattens: p^(1/2), renormalised
    flat = probs.sqrt() / probs.sqrt().sum()
    freq = torch.bincount(next_tokens(logits, 2.0, 1.0, g), minlength=5).float() / 40000
    assert torch.allclose(freq, flat, atol=0.01)
    assert next_tokens(logits[:3], 0.0, 1.0, None).tolist() == [0, 0, 0]
    assert torch.allclose(token_logprobs(logits[:1], torch.tensor([2])), probs[2:3].log(), atol=1e-6)


def test_top_p_grows_its_candidate_set_for_flat_rows():
    # 1000 equally likely tokens: the nucleus at 0.5 holds 500 of them, far more than the first top-k guess.
    logits = torch.zeros(4000, 1000)
    drawn = next_tokens(logits, 1.0, 0.5, torch.Generator().manual_seed(0))
    assert drawn.unique().numel() > 400


def test_wide_rows_draw_blocks_then_tokens_with_the_right_frequencies():
    # Wider than 8 blocks, and not a whole number of blocks: the two-level draw, with a padded last block.
    width = 20 * CDF_BLOCK + 7
    # two hot tokens in the second block: the draw inside a block must start from the blocks before it
    hot = torch.tensor([0, CDF_BLOCK + 1, 2 * CDF_BLOCK - 1, 9 * CDF_BLOCK + 3, width - 1])
    mass = torch.tensor([0.1, 0.2, 0.3, 0.15, 0.25])
    logits = torch.full((2000, width), -float("inf"))
    logits[:, hot] = mass.log()
    g = torch.Generator().manual_seed(0)
    drawn = torch.cat([next_tokens(logits, 1.0, 1.0, g) for _ in range(10)])
    assert set(drawn.tolist()) <= set(hot.tolist())  # zero-probability tokens are never drawn
    freq = torch.bincount(drawn, minlength=width)[hot].float() / drawn.numel()
    assert torch.allclose(freq, mass, atol=0.015)


def test_sequence_logprobs_matches_naive_forward(sharp_model, prompts):
    seqs = [p + [11, 22, 33, 44][:k] for p, k in zip(prompts, [4, 1, 3, 2, 4, 0])]
    starts = [len(p) for p in prompts]
    got = sequence_logprobs(sharp_model, seqs, starts, batch_size=2)
    for s, st, g in zip(seqs, starts, got):
        assert g.shape == (len(s) - st,)
        if len(s) > st:
            assert torch.allclose(g, fresh_logprobs(sharp_model, s[:st], s[st:]), atol=1e-4, rtol=0)
    # a start inside the prompt scores prompt tokens too
    whole = sequence_logprobs(sharp_model, [seqs[0]], [1])[0]
    assert torch.allclose(whole[-4:], got[0], atol=1e-5)
    with pytest.raises(ValueError):
        sequence_logprobs(sharp_model, [seqs[0]], [0])


def test_sequence_logprobs_with_grad(sharp_model, prompts):
    out = sequence_logprobs(sharp_model, [prompts[1] + [5, 6]], [len(prompts[1])], grad=True)[0]
    out.sum().backward()
    assert sharp_model.lm_head.weight.grad is not None
    sharp_model.zero_grad(set_to_none=True)
