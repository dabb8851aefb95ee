"""PPO end to end on a tiny random policy with a synthetic reward: the fraction of answer tokens equal to a
chosen token. The policy must learn it within a few iterations while the KL to the reference stays bounded."""

import copy
from collections import Counter

import torch

from chatalign.rlhf.config import PPOSection
from chatalign.rlhf.ppo.models import assemble
from chatalign.rlhf.ppo.trainer import PPOTrainer
from chatalign.rollout.engine import generate_rollouts
from chatalign.runs import RunDir
from chatalign.text.masks import encode_prompt

from ..conftest import peaky_llama, prompt_dicts, token_fraction_reward

PPO = {"iterations": 8, "batch_prompts": 16, "minibatch": 8, "epochs": 2, "max_new_tokens": 12,
       "gen_batch_size": 16, "score_batch_size": 16, "beta": 0.01, "reward_transform": "raw",
       "optim": {"lr": 1e-2, "value_lr": 3e-3}, "early_stopping": {"eval_every": 100}, "guards": {"max_kl": 100}}


def most_sampled_token(lm, tok, prompts):
    ids = [encode_prompt(tok, p["messages"]) for p in prompts]
    ro = generate_rollouts(lm, tok, ids, num_samples=2, max_new_tokens=12, seed=123)
    counts = Counter(t for r in ro for t in r.response_ids)
    token, n = counts.most_common(1)[0]
    return token, n / sum(counts.values())


def test_ppo_learns_a_synthetic_reward_with_bounded_kl(smol_tokenizer, tmp_path):
    from ...conftest import reward_model_from_causal_lm

    lm = peaky_llama(smol_tokenizer)
    prompts = prompt_dicts(16)
    token, start_share = most_sampled_token(lm, smol_tokenizer, prompts)
    assert 0.02 < start_share < 0.4  # there is something to learn, and a signal to learn it from
    models = assemble(lm, smol_tokenizer, reward_model_from_causal_lm(lm, seed=1), None, reference=copy.deepcopy(lm))
    before = {n: p.detach().clone() for n, p in models.reference.named_parameters()}
    run = RunDir(tmp_path, "rlhf")
    trainer = PPOTrainer(models, prompts, token_fraction_reward(token), PPOSection.model_validate(PPO), run,
                         tmp_path / "ppo")
    summary = trainer.train()
    log = [r for r in run.read_metrics() if r["step"] >= 1]
    rewards = [r["reward"] for r in log]
    assert len(log) == 8 and summary["ppo_iterations"] == 8
    assert max(rewards[:2]) < 0.35 and min(rewards[-2:]) > 0.7, rewards  # learned within a few iterations
    kls = [r["kl"] for r in log]
    assert abs(kls[0]) < 1e-3  # iteration 1 samples the starting policy: pi == pi_ref
    assert max(kls) < 12.0, kls  # bounded: under 1 nat per answer token
    for key in ("reward", "kl", "response_length", "clip_fraction", "value_loss", "entropy", "policy_loss",
                "time_generation_s", "time_scoring_s", "time_reference_s", "time_training_s"):
        assert key in log[-1]
    assert log[-1]["entropy"] < log[0]["entropy"]  # the policy concentrated on the rewarded token
    for n, p in models.reference.named_parameters():  # the reference never moves
        assert torch.equal(p, before[n])


def test_lora_policy_uses_its_adapter_disabled_base_as_reference(smol_tokenizer, tmp_path):
    from chatalign.training.config import LoraConfig

    from ...conftest import reward_model_from_causal_lm

    lm = peaky_llama(smol_tokenizer)
    base = copy.deepcopy(lm)
    prompts = prompt_dicts(8)
    token, _ = most_sampled_token(lm, smol_tokenizer, prompts)
    models = assemble(lm, smol_tokenizer, reward_model_from_causal_lm(lm, seed=1),
                      LoraConfig(enabled=True, r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]))
    assert models.uses_lora and models.reference is None
    cfg = PPOSection.model_validate({**PPO, "iterations": 3, "batch_prompts": 8, "minibatch": 4,
                                     "optim": {"lr": 3e-2, "value_lr": 3e-3}})
    run = RunDir(tmp_path, "rlhf")
    trainer = PPOTrainer(models, prompts, token_fraction_reward(token), cfg, run, tmp_path / "ppo")
    trainer.train()
    trainable = [n for n, p in models.policy.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    # the reference pass (adapter disabled) is the untouched base model; the policy has moved
    batch_ids = torch.tensor([encode_prompt(smol_tokenizer, prompts[0]["messages"])])
    with torch.no_grad(), models.reference_context():
        ref_logits = models.reference_model()(input_ids=batch_ids).logits
    with torch.no_grad():
        base_logits = base(input_ids=batch_ids).logits
        policy_logits = models.policy(input_ids=batch_ids).logits
    assert torch.allclose(ref_logits, base_logits, atol=1e-5)
    assert not torch.allclose(policy_logits, base_logits, atol=1e-3)
    kls = [r["kl"] for r in run.read_metrics() if r["step"] >= 1]
    assert abs(kls[0]) < 1e-3 and kls[-1] > kls[0]
