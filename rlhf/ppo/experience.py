"""PPO's experience maker: one iteration's answers sampled, scored and turned into the update's fixed targets.

Draw `batch_prompts` training prompts (a pure function of the seed and the iteration), sample one answer each
from the policy (with log pi_old per token), score them (R_c), compute the reference log-probs and the old
values, then turn R~c and the per-token KL penalty into per-token rewards and run GAE (Llama 2 sec. 3.2.3).
Under several ranks each rank does the sampling and the forwards on its share (see `shares`); the targets are
computed on the merged batch, the same on every rank. Nothing is trained here.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from chatalign.rlhf.ppo.batch import RolloutBatch, build_batch, derived_seed, iteration_prompt_indices
from chatalign.rlhf.ppo.clock import PhaseClock
from chatalign.rlhf.ppo.shares import (
    mean_or_none,
    rollout_rows,
    rows_batch,
    rows_rewards,
    rows_rollouts,
    rows_tensor,
    score_share,
)
from chatalign.rlhf.reward_fn import RewardBatch
from chatalign.training.distributed import gather_rows, share

SALT_GENERATE = 1


@dataclass
class Scored:
    """The merged answers of an iteration with everything measured on them, before any PPO arithmetic."""

    rollouts: list
    rewards: RewardBatch
    batch: RolloutBatch
    old_logprobs: torch.Tensor  # [B, T] log pi_old, from sampling
    ref_logprobs: torch.Tensor  # [B, T] log pi_ref
    values: torch.Tensor  # [B, T] V_old


@dataclass
class Experience:
    """What the update trains on: answer-aligned [B, T] tensors (zero past each answer) and per-answer scores,
    fixed for the whole update phase, and the iteration's statistics."""

    batch: RolloutBatch  # token ids, answer positions and targets, `mask` (1.0 on answer tokens)
    rollouts: list
    rewards: RewardBatch  # R_c (and R_h, R_s) per answer
    score: torch.Tensor  # [B] R~c, the transformed reward
    old_logprobs: torch.Tensor
    ref_logprobs: torch.Tensor
    values: torch.Tensor
    kl: torch.Tensor  # [B, T] the KL estimate the penalty is charged on
    advantages: torch.Tensor
    returns: torch.Tensor
    stats: dict

    @property
    def mask(self) -> torch.Tensor:
        return self.batch.mask


class ExperienceMaker:
    """Makes iteration i's Experience from the current policy and value model (see the module docstring)."""

    def __init__(self, prompts: list, prompt_ids: list[list[int]], sampler, frozen, policy, value, kl_control,
                 cfg, dist, pad_id: int):
        self.prompts, self.prompt_ids, self.sampler, self.frozen = prompts, prompt_ids, sampler, frozen
        self.policy, self.value, self.kl_control = policy, value, kl_control
        self.cfg, self.dist, self.pad_id = cfg, dist, pad_id

    def make(self, iteration: int, clock: PhaseClock) -> Experience:
        cfg = self.cfg
        chosen = iteration_prompt_indices(len(self.prompts), cfg.batch_prompts, iteration, cfg.seed)
        return self.targets(self.score(chosen, derived_seed(cfg.seed, iteration, SALT_GENERATE), clock))

    def score(self, chosen: list[int], seed: int, clock: PhaseClock) -> Scored:
        """This rank's share of the prompts sampled, scored, with reference log-probs and old values, then
        all-gathered: the whole batch in `chosen` order, identical on every rank."""
        from chatalign.rlhf.ppo.forward import batched_values

        dist, cfg = self.dist, self.cfg
        mine = share(chosen, dist)
        rollouts: list = []
        with self.policy.gathered():  # a collective under ZeRO-3: every rank enters, even with no prompts
            # rank 0 draws with the single-process seed; the others with their own stream. A collective sampler
            # (a vLLM engine per rank) is called by every rank
            if mine or getattr(self.sampler, "collective", False):
                rollouts = self.sampler([self.prompt_ids[i] for i in mine], seed + dist.rank)
        clock.lap("generation")
        rewards = score_share(self.frozen, [self.prompts[i] for i in mine], rollouts)
        clock.lap("scoring")
        local = build_batch([r.prompt_ids for r in rollouts], [r.response_ids for r in rollouts],
                            self.pad_id) if mine else None
        # a collective under frozen ZeRO-3; a LoRA reference is the policy itself, its ZeRO-3 shards gathered
        with self.policy.gathered() if self.frozen.reference.is_policy else contextlib.nullcontext():
            ref_lp = self.frozen.reference.logprobs(local, cfg.score_batch_size)
        clock.lap("reference")
        with self.value.gathered():
            # lockstep even with the weights gathered: the engine's start-of-forward hook stays in place and its
            # trace checks are collectives
            values = batched_values(self.value.module, local, cfg.score_batch_size, dist)
        clock.lap("values")
        rows = gather_rows(dist, rollout_rows(rollouts, rewards, ref_lp, values) if mine else [], len(chosen))
        clock.lap(None)
        batch = rows_batch(rows, self.pad_id)
        return Scored(rollouts=rows_rollouts(rows), rewards=rows_rewards(rows), batch=batch,
                      old_logprobs=rows_tensor(rows, "logprobs", batch),
                      ref_logprobs=rows_tensor(rows, "ref_logprobs", batch),
                      values=rows_tensor(rows, "values", batch))

    def targets(self, s: Scored) -> Experience:
        """Per-token rewards R~c - beta * KL, then GAE advantages and returns (whitened advantages by default)."""
        from chatalign.rlhf.ppo.math import gae, kl_per_token, masked_whiten, token_rewards
        from chatalign.rlhf.reward_mix import transform_reward

        cfg, mask = self.cfg, s.batch.mask
        r_c = s.rewards.combined.float()
        score = transform_reward(r_c, cfg.reward_transform)
        kl = kl_per_token(s.old_logprobs, s.ref_logprobs, cfg.kl_estimator) * mask
        per_token = token_rewards(score, kl, self.kl_control.beta, mask)
        advantages, returns = gae(per_token, s.values, mask, cfg.gamma, cfg.lam)
        if cfg.whiten_advantages:
            advantages = masked_whiten(advantages, mask)
        exp = Experience(batch=s.batch, rollouts=s.rollouts, rewards=s.rewards, score=score,
                         old_logprobs=s.old_logprobs, ref_logprobs=s.ref_logprobs, values=s.values, kl=kl,
                         advantages=advantages, returns=returns, stats={})
        exp.stats = experience_stats(exp, cfg.reward_transform, self.kl_control.beta)
        return exp


def experience_stats(exp: Experience, reward_transform: str, beta: float) -> dict:
    """The iteration's logged statistics of its answers, rewards, KL and values."""
    from chatalign.rlhf.ppo.math import masked_mean
    from chatalign.rlhf.reward_mix import logit

    mask, r_c = exp.mask, exp.rewards.combined.float()
    seq_kl = ((exp.old_logprobs - exp.ref_logprobs) * mask).sum(-1)  # k1 per answer: log pi/pi_ref of the sample
    return {
        "reward": float(r_c.mean()),
        "reward_helpful": mean_or_none(exp.rewards.helpful),
        "reward_safety": mean_or_none(exp.rewards.safety),
        "score_transformed_std": float(exp.score.std()) if len(exp.score) > 1 else 0.0,
        "abs_logit_reward": float(logit(r_c).abs().mean()) if reward_transform != "raw" else None,
        "kl": float(seq_kl.mean()),
        "kl_per_token": float(masked_mean(exp.old_logprobs - exp.ref_logprobs, mask)),
        "kl_penalty": float((beta * exp.kl).sum(-1).mean()),
        "response_length": float(mask.sum(-1).mean()),
        "finished_fraction": sum(r.finished for r in exp.rollouts) / len(exp.rollouts),
        "value_mean": float(masked_mean(exp.values, mask)),
        "return_mean": float(masked_mean(exp.returns, mask)),
    }
