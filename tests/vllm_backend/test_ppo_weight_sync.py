"""PPO with vLLM generating its answers: the engine gets the policy's weights in memory before each generation, the
old log-probs come from the policy itself. Checked by a weight change that changes the greedy answer, and by PPO
learning a synthetic reward, which it can only do if the engine samples the updated policy."""

from __future__ import annotations

import copy
from collections import Counter

import pytest
import torch

from tests.vllm_backend.conftest import memory_share


def wide_peaky_llama(tokenizer, seed: int = 0):
    """A 1-layer random Llama with one 64-wide head (vLLM's CPU attention takes those) whose embeddings (tied to the
    LM head) are drawn so that it repeats the prompt's last token (a newline) about 14% of the time: peaked enough
    for that token to be sampled at all (a standard init samples from an almost uniform 49k vocabulary), not so
    peaked that there is nothing left to learn (measured: std 0.2 repeats it 45% of the time, 0.15 4%)."""
    from tests.conftest import tiny_llama

    lm = tiny_llama(tokenizer, hidden=64, layers=1, heads=1, kv_heads=1, seed=seed)
    torch.manual_seed(seed)
    with torch.no_grad():
        lm.model.embed_tokens.weight.normal_(0, 0.17)
    return lm


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory, smol_tokenizer):
    from chatalign.models import save_hf_atomic

    d = tmp_path_factory.mktemp("vllm_ppo") / "policy"
    save_hf_atomic(wide_peaky_llama(smol_tokenizer), smol_tokenizer, d)
    return d


@pytest.fixture()
def engine(policy_dir):
    """One engine per test: two in one process do not fit vLLM's memory check (tests/vllm_backend/conftest.py)."""
    from chatalign.rollout.vllm_engine import VLLMEngine

    eng = VLLMEngine(str(policy_dir), dtype="float32", memory_share=memory_share(), max_model_len=256)
    yield eng
    eng.close()


@pytest.fixture()
def embedded_engine(embedded_dir):
    from chatalign.rollout.vllm_engine import VLLMEngine

    eng = VLLMEngine(str(embedded_dir), dtype="float32", memory_share=memory_share(), max_model_len=512)
    yield eng
    eng.close()


def prompts_ids(tokenizer, n: int = 8, template: str = "Say something about {}."):
    from chatalign.text.masks import encode_prompt

    return [encode_prompt(tokenizer, [{"role": "user", "content": template.format(w)}])
            for w in ["cats", "dogs", "rain", "tea", "maps", "jazz", "owls", "boats"][:n]]


def test_after_a_weight_change_the_engine_answers_with_the_new_weights(embedded_engine, embedded_dir,
                                                                      smol_tokenizer):
    """On the embedded model, whose greedy answers are sentences (a random tiny model repeats one token)."""
    from types import SimpleNamespace

    from chatalign.models import load_causal_lm
    from chatalign.rlhf.ppo.sampler import PolicySampler
    from chatalign.rollout.engine import generate_rollouts

    policy = load_causal_lm(str(embedded_dir), "float32").eval()
    models = SimpleNamespace(policy=policy, tokenizer=smol_tokenizer)  # what the sampler reads of PPOModels
    sampler = PolicySampler(models, embedded_engine, max_new_tokens=12, temperature=0.0, top_p=1.0, batch_size=8,
                            return_logprobs=True)
    ids = prompts_ids(smol_tokenizer, 6, "Write one sentence about {}.")
    before = sampler(ids, 0)
    with torch.no_grad():  # a change that moves the greedy answers
        for name, param in policy.named_parameters():
            if "layers.10.mlp" in name:
                param.mul_(-3.0)
    native = generate_rollouts(policy, smol_tokenizer, ids, max_new_tokens=12, temperature=0.0, batch_size=8)
    after = sampler(ids, 0)
    assert [r.response_ids for r in after] != [r.response_ids for r in before]
    same = sum(a.response_ids == n.response_ids for a, n in zip(after, native))
    assert same >= len(ids) - 1, [(a.text, n.text) for a, n in zip(after, native)]  # near-ties may flip one
    # pi_old from the policy's own forward pass: exactly what the native engine reports for the same answers
    for a, n in zip(after, native):
        if a.response_ids == n.response_ids:
            assert torch.allclose(torch.tensor(a.logprobs), torch.tensor(n.logprobs), atol=1e-4)


def test_ppo_learns_a_synthetic_reward_from_answers_vllm_generates(engine, policy_dir, smol_tokenizer, tmp_path):
    from chatalign.models import load_causal_lm
    from chatalign.rlhf.config import PPOSection
    from chatalign.rlhf.ppo.models import assemble
    from chatalign.rlhf.ppo.trainer import PPOTrainer
    from chatalign.rollout.vllm_engine import VLLMEngine
    from chatalign.runs import RunDir
    from tests.conftest import reward_model_from_causal_lm
    from tests.rlhf.conftest import prompt_dicts, token_fraction_reward

    lm = load_causal_lm(str(policy_dir), "float32")
    prompts = prompt_dicts(16)
    ids = [prompts_ids(smol_tokenizer, 8)[i % 8] for i in range(16)]
    start = engine.rollouts(smol_tokenizer, ids, num_samples=2, max_new_tokens=12, temperature=1.0, seed=123)
    token, n = Counter(t for r in start for t in r.response_ids).most_common(1)[0]
    assert 0.02 < n / sum(len(r.response_ids) for r in start) < 0.4  # something to learn, a signal to learn from
    models = assemble(lm, smol_tokenizer, reward_model_from_causal_lm(lm, seed=1), None, reference=copy.deepcopy(lm))
    cfg = PPOSection.model_validate({
        "iterations": 8, "batch_prompts": 16, "minibatch": 8, "epochs": 2, "max_new_tokens": 12,
        "gen_batch_size": 16, "score_batch_size": 16, "beta": 0.01, "reward_transform": "raw",
        "optim": {"lr": 3e-3, "value_lr": 3e-3}, "early_stopping": {"eval_every": 100}, "guards": {"max_kl": 100}})
    calls = []
    real = VLLMEngine.rollouts
    spy = lambda self, *a, **kw: calls.append(len(a[1])) or real(self, *a, **kw)  # noqa: E731
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(VLLMEngine, "rollouts", spy)
        run = RunDir(tmp_path, "rlhf")
        PPOTrainer(models, prompts, token_fraction_reward(token), cfg, run, tmp_path / "ppo", generator=engine).train()
    assert calls == [16] * 8  # every iteration's answers came from vLLM
    log = [r for r in run.read_metrics() if r["step"] >= 1]
    rewards = [r["reward"] for r in log]
    # the engine samples the policy as updated: with stale weights the reward could not rise
    assert max(rewards[:2]) < 0.35 and min(rewards[-2:]) > 0.6, rewards
    assert abs(log[0]["kl"]) < 1e-3  # iteration 1: pi_old recomputed by the policy equals pi_ref
    assert max(r["kl"] for r in log) < 12.0
