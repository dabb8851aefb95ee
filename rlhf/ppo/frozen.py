"""Where PPO's frozen networks live (`ppo.frozen_models`): the reference policy and the two reward models.

`replicated`: a whole copy on every rank (plain forwards, each rank on its own share of the batch).
`zero3`: each partitioned over the ranks by a DeepSpeed ZeRO-3 inference engine (chatalign.training.zero_inference),
1/N of the weights per rank, the layers gathered one by one during each forward. Those forwards are
collectives: every rank runs the same number of them, a rank with a smaller (or empty) share of the batch
running one-token dummy forwards, and every rank calls the reward function even with no answers to score.
With a LoRA policy the reference is the policy itself with its adapter disabled (trained, in the policy's
engine), so `zero3` partitions only the reward models. In one process there is nothing to partition over and
`zero3` keeps the models whole.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from chatalign.rlhf.reward_fn import RewardFn

log = logging.getLogger(__name__)


def frozen_zero3(cfg, dist) -> bool:
    """Whether the frozen models are partitioned: `ppo.frozen_models: zero3` under several ranks."""
    return cfg.frozen_models == "zero3" and dist.initialized and dist.world_size > 1


class FrozenReference:
    """log pi_ref(answer tokens) of a batch, from a whole reference or a ZeRO-3 partitioned one."""

    def __init__(self, models, dist, zero3: bool):
        from chatalign.rlhf.ppo.forward import PolicyForward

        self.models, self.dist, self.engine = models, dist, None
        if zero3 and not models.uses_lora:
            from chatalign.training.zero_inference import inference_engine

            self.engine = inference_engine(PolicyForward(models.reference), dist)

    def logprobs(self, batch, micro: int) -> torch.Tensor | None:
        """[B, T] log-probs of `batch` (None: this rank has no answers; under ZeRO-3 it still takes part)."""
        from chatalign.rlhf.ppo.forward import PolicyForward, batched_logprobs

        if self.engine is not None:
            return batched_logprobs(self.engine, batch, micro, self.dist)
        with self.models.reference_context():  # lockstep: a rank without answers still takes part
            return batched_logprobs(PolicyForward(self.models.reference_model()), batch, micro, self.dist)

    @property
    def is_policy(self) -> bool:
        """The reference is the policy with its LoRA adapter off (its weights are the policy's, partitioned
        with them under ZeRO-3)."""
        return self.models.uses_lora


def shard_reward_models(reward_fn, dist):
    """`reward_fn` with its two reward models partitioned over the ranks, in place (the whole copies are freed,
    so the `reward_fn` handed in must not score any more), or `reward_fn` itself when it holds no reward
    models (a synthetic reward) or holds partitioned ones already."""
    from chatalign.reward.sharded_scorer import ShardedScorer
    from chatalign.rlhf.reward_fn import TwoRewardModels

    if not isinstance(reward_fn, TwoRewardModels) or isinstance(reward_fn.helpful, ShardedScorer):
        return reward_fn
    return TwoRewardModels(ShardedScorer(reward_fn.helpful, dist), ShardedScorer(reward_fn.safety, dist),
                           reward_fn.threshold, reward_fn.batch_tokens)


@dataclass
class FrozenModels:
    """The networks PPO never trains, shared by the experience maker and the evaluator."""

    reference: FrozenReference
    reward_fn: RewardFn  # partitioned in place under `zero3`
    zero3: bool  # partitioned: every rank calls their forwards at the same points, even with nothing to score

    def close(self) -> None:
        """Tear down the ZeRO-3 inference engines of the partitioned models (none when they are whole)."""
        engines = [self.reference.engine] + [getattr(s, "engine", None) for s in (
            getattr(self.reward_fn, "helpful", None), getattr(self.reward_fn, "safety", None))]
        for engine in engines:
            if engine is not None:
                engine.destroy()


def place_frozen(models, reward_fn: RewardFn, cfg, dist) -> FrozenModels:
    """The reference and the reward function placed as `ppo.frozen_models` says (once, before training)."""
    zero3 = frozen_zero3(cfg, dist)
    if cfg.frozen_models == "zero3" and not zero3:
        log.info("ppo.frozen_models=zero3 in one process: nothing to partition over, the frozen models stay whole")
    if zero3 and models.uses_lora:
        log.info("ppo.frozen_models=zero3 with ppo.lora: the reference is the policy itself (adapter disabled); "
                 "only the reward models are partitioned")
    if zero3:
        reward_fn = shard_reward_models(reward_fn, dist)
    return FrozenModels(reference=FrozenReference(models, dist, zero3), reward_fn=reward_fn, zero3=zero3)
