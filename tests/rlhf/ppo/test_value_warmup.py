"""`ppo.value.warmup_iterations`: the first iterations train the value model only; the policy starts after."""

import copy

import torch

from chatalign.rlhf.config import PPOSection
from chatalign.rlhf.ppo.models import assemble
from chatalign.rlhf.ppo.trainer import PPOTrainer
from chatalign.runs import RunDir

from ..conftest import peaky_llama, prompt_dicts, token_fraction_reward


def snapshot(module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}


def changed(before: dict, module) -> bool:
    now = dict(module.named_parameters())
    return any(not torch.equal(t, now[n]) for n, t in before.items())


def test_warmup_iterations_train_the_value_model_alone_then_both(smol_tokenizer, tmp_path):
    from ...conftest import reward_model_from_causal_lm

    lm = peaky_llama(smol_tokenizer)
    models = assemble(lm, smol_tokenizer, reward_model_from_causal_lm(lm, seed=1), None, reference=copy.deepcopy(lm))
    cfg = PPOSection.model_validate({
        "iterations": 2, "batch_prompts": 8, "minibatch": 4, "max_new_tokens": 8, "gen_batch_size": 8,
        "score_batch_size": 4, "beta": 0.05, "reward_transform": "raw", "value": {"warmup_iterations": 1},
        "optim": {"lr": 1e-2, "value_lr": 3e-3}, "early_stopping": {"eval_every": 10}, "guards": {"max_kl": 1000}})
    trainer = PPOTrainer(models, prompt_dicts(12), token_fraction_reward(198), cfg, RunDir(tmp_path, "rlhf"),
                         tmp_path / "ppo")
    policy, value = snapshot(models.policy), snapshot(models.value)
    first = trainer.iteration(0)
    assert not changed(policy, models.policy) and changed(value, models.value)
    assert first["value_warmup"] is True and "entropy" not in first and "policy_loss" not in first
    assert first["value_loss"] > 0 and abs(first["kl"]) < 1e-3  # the policy is still the reference
    value = snapshot(models.value)
    second = trainer.iteration(1)
    assert changed(policy, models.policy) and changed(value, models.value)
    assert "value_warmup" not in second and second["entropy"] > 0
