"""Guards stop a round with a clear message; early stopping on held-out prompts; restoring the best policy."""

import copy

import pytest
import torch

from chatalign.errors import RunError
from chatalign.rlhf.config import PPOSection
from chatalign.rlhf.ppo.models import assemble
from chatalign.rlhf.ppo.trainer import PPOTrainer
from chatalign.rlhf.reward_fn import RewardBatch
from chatalign.runs import RunDir

from ..conftest import peaky_llama, prompt_dicts


def constant(value):
    def reward(prompts, texts, ids):
        return RewardBatch(combined=torch.full((len(texts),), value))

    return reward


def trainer(tok, root, reward_fn, **ppo):
    from ...conftest import reward_model_from_causal_lm

    lm = peaky_llama(tok)
    models = assemble(lm, tok, reward_model_from_causal_lm(lm, seed=1), None, reference=copy.deepcopy(lm))
    cfg = PPOSection.model_validate({"iterations": 10, "batch_prompts": 4, "minibatch": 4, "max_new_tokens": 6,
                                     "gen_batch_size": 4, "optim": {"lr": 1e-2}, **ppo})
    return PPOTrainer(models, prompt_dicts(8), reward_fn, cfg, RunDir(root, "rlhf"), root / "ppo",
                      heldout=prompt_dicts(2))


def test_kl_and_reward_guards_name_the_bound_and_the_fix(tmp_path):
    from chatalign.rlhf.config import Guards
    from chatalign.rlhf.ppo.guards import check_guards

    guards = Guards(max_kl=5.0, max_abs_reward=3.0)
    with pytest.raises(RunError, match=r"iteration 4: mean KL .* ppo.guards.max_kl=5.0 .*ppo.beta.*are in .*ckpts"):
        check_guards(guards, 3, {"reward": 0.5, "kl": 7.5, "abs_logit_reward": 0.1}, tmp_path / "ckpts")
    with pytest.raises(RunError, match="max_abs_reward=3.0"):
        check_guards(guards, 0, {"reward": 0.99, "kl": 0.0, "abs_logit_reward": 4.6}, tmp_path)
    with pytest.raises(RunError, match="non-finite reward"):
        check_guards(guards, 0, {"reward": float("nan"), "kl": 0.0, "abs_logit_reward": None}, tmp_path)
    check_guards(guards, 0, {"reward": 0.5, "kl": 4.9, "abs_logit_reward": 2.9}, tmp_path)  # within bounds


def test_a_saturated_reward_stops_the_round_before_any_update(smol_tokenizer, tmp_path):
    t = trainer(smol_tokenizer, tmp_path, constant(0.9999), reward_transform="logit",
                guards={"max_abs_reward": 5.0}, early_stopping={"eval_every": 1})
    before = {n: p.detach().clone() for n, p in t.models.policy.named_parameters()}
    with pytest.raises(RunError, match="PPO stopped at iteration 1: mean \\|logit R_c\\| 9.21"):
        t.train()
    assert all(torch.equal(p, before[n]) for n, p in t.models.policy.named_parameters())
    assert not (tmp_path / "ppo" / "checkpoints").exists() or not any((tmp_path / "ppo" / "checkpoints").iterdir())


def test_early_stopping_after_patience_and_the_best_policy_is_restored(smol_tokenizer, tmp_path):
    t = trainer(smol_tokenizer, tmp_path, constant(0.5), early_stopping={"eval_every": 1, "patience": 2})
    start = {n: p.detach().clone() for n, p in t.models.policy.named_parameters()}
    summary = t.train()
    assert summary["ppo_iterations"] == 2  # evaluations at 0 (best), 1 and 2 without improvement
    assert summary["ppo_stop_reason"].startswith("early stopping")
    assert summary["ppo_best_iteration"] == 0
    assert (tmp_path / "ppo" / "checkpoints" / "step-0000002").is_dir()
    moved = any(not torch.equal(p, start[n]) for n, p in t.models.policy.named_parameters())
    assert moved
    assert t.restore_best() == 0
    assert all(torch.equal(p, start[n]) for n, p in t.models.policy.named_parameters())
