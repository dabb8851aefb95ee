"""PPO across ranks: DeepSpeed engines for policy and value, weights gathered once per generation phase,
rollouts split across ranks and merged back.

Layout under several ranks (or `ppo.deepspeed.enabled`): the policy and value forwards are each wrapped by a
DeepSpeed engine (ZeRO 0-3, offload as `ppo.deepspeed` allows); the reference and the reward models are
replicated on every rank or partitioned by ZeRO-3 inference engines, as `ppo.frozen_models` says (see
`ppo_frozen`: then their forwards are collectives, run in lockstep by every rank). Each rank samples, scores
and evaluates its share of the batch prompts (`share`: rows rank, rank + world, ...); the per-answer results
are all-gathered and put back in batch order (`merge`), so whitening, GAE and the logged statistics are
computed on the whole batch, the same on every rank, exactly as one process would compute them from the same
rollouts. Generation and the old-value pass run with the ZeRO-3 parameters gathered once for the whole phase
and the per-module hooks lifted (DeepSpeed's `unwrap_model_for_generation`): gathering per token would make
decoding crawl. Generation calls the model under the engine's root module, so ranks may run different numbers
of decoding steps; a forward of the root module itself (PolicyForward, ValueForward) still runs DeepSpeed's
start-of-forward hook, whose trace checks are collectives, so the old-value pass runs in lockstep like the
partitioned frozen models (`ppo_forward.batched_values(dist=...)`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from chatalign.errors import ConfigError
from chatalign.training.config import DeepSpeedConfig, OptimConfig
from chatalign.training.distributed import DistContext


@dataclass
class PPOEngines:
    """The two training engines and the ZeRO stage they run at."""

    policy: Any
    value: Any
    zero_stage: int

    def gathered(self, engine):
        """Whole weights of `engine`'s module for a generation or scoring phase (ZeRO-3), hooks lifted."""
        if self.zero_stage != 3:
            return contextlib.nullcontext()
        from deepspeed.runtime.zero.stage3 import unwrap_model_for_generation

        return unwrap_model_for_generation(engine)


def build_engines(dist: DistContext, policy_fwd, value_fwd, policy_opt, value_opt, ds: DeepSpeedConfig,
                  grad_clip: float | None, micro_batch: int, uses_lora: bool) -> PPOEngines:
    stage = ds.zero_stage
    if uses_lora and stage == 3:
        raise ConfigError("ppo.lora with DeepSpeed ZeRO-3 (the default under several ranks) is not supported: "
                          "set ppo.deepspeed.zero_stage to 2, or train a full-weight policy")
    # the DeepSpeed config only reads grad_clip from the optimizer section: the lr lives in the torch optimizers
    clip = OptimConfig(grad_clip=grad_clip)
    policy = dist.deepspeed_engine(policy_fwd, policy_opt, None, ds, clip, micro_batch)
    value = dist.deepspeed_engine(value_fwd, value_opt, None, ds, clip, micro_batch)
    return PPOEngines(policy=policy, value=value, zero_stage=stage)


def share(items: Sequence, dist: DistContext) -> list:
    """This rank's items: positions rank, rank + world, ... (every rank gets ceil or floor of n / world)."""
    return list(items[dist.rank::dist.world_size])


def merge(shares: Sequence[Sequence], n: int) -> list:
    """Inverse of `share` over all ranks: item i of the batch is item i // world of rank i % world."""
    world = len(shares)
    return [shares[i % world][i // world] for i in range(n)]


def gather_rows(dist: DistContext, rows: list, n: int) -> list:
    """Every rank's `share` of per-item rows (plain Python objects), merged back into batch order."""
    if not dist.initialized:
        return rows
    import torch.distributed as tdist

    box: list = [None] * dist.world_size
    tdist.all_gather_object(box, rows)
    return merge(box, n)


def all_reduce_sums(dist: DistContext, values: dict[str, float]) -> dict[str, float]:
    """Sum each value over the ranks in one collective (keys in the same order on every rank)."""
    if not dist.initialized or not values:
        return dict(values)
    import torch.distributed as tdist

    keys = list(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    tdist.all_reduce(t)
    return dict(zip(keys, t.tolist()))


def rollout_rows(rollouts, rewards, ref_logprobs: torch.Tensor, values: torch.Tensor) -> list[dict]:
    """Per-answer records of one rank's share: what the whole-batch arithmetic needs, as plain lists."""
    per = rewards.rows()
    out = []
    for i, r in enumerate(rollouts):
        n = len(r.response_ids)
        out.append({"prompt_ids": r.prompt_ids, "response_ids": r.response_ids, "text": r.text,
                    "logprobs": list(r.logprobs), "finished": bool(r.finished),
                    "ref_logprobs": ref_logprobs[i, :n].tolist(), "values": values[i, :n].tolist(), **per[i]})
    return out


def rows_to_tensors(rows: list[dict], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ref log-probs, old values) [N, width] from merged rows."""
    from chatalign.rlhf.ppo.batch import pad_ragged

    return pad_ragged([r["ref_logprobs"] for r in rows], width), pad_ragged([r["values"] for r in rows], width)


def rows_rewards(rows: list[dict]):
    """The merged batch's RewardBatch."""
    from chatalign.rlhf.reward_fn import RewardBatch

    def column(key):
        vals = [r[key] for r in rows]
        return None if any(v is None for v in vals) else torch.tensor(vals, dtype=torch.float32)

    return RewardBatch(combined=column("r_combined"), helpful=column("r_helpful"), safety=column("r_safety"))


def collect_shared(trainer, chosen: list[int], seed: int, clock):
    """This rank's share of iteration's rollouts: sampled, scored, reference log-probs and old values, then
    all-gathered. Returns (rollouts, rewards, batch, old log-probs, ref log-probs, old values) of the whole
    batch, in `chosen` order, identical on every rank."""
    from chatalign.rlhf.ppo.batch import build_batch, pad_ragged
    from chatalign.rlhf.ppo.forward import batched_values
    from chatalign.rollout.engine import Rollout

    dist, eng, cfg = trainer.dist, trainer.engines, trainer.cfg
    mine = share(chosen, dist)
    rollouts: list = []
    with eng.gathered(eng.policy):  # a collective under ZeRO-3: every rank enters, even with no prompts
        if mine:
            # rank 0 draws with the single-process seed; the others with their own stream
            rollouts = trainer.generate([trainer.prompt_ids[i] for i in mine], seed + dist.rank)
    clock.lap("generation")
    rewards = score_share(trainer, [trainer.prompts[i] for i in mine], rollouts)
    clock.lap("scoring")
    local = None
    if mine:
        local = build_batch([r.prompt_ids for r in rollouts], [r.response_ids for r in rollouts], trainer.pad_id)
    ref_lp = trainer.reference.logprobs(local, cfg.score_batch_size)  # a collective under frozen ZeRO-3
    clock.lap("reference")
    with eng.gathered(eng.value):
        # lockstep even with the weights gathered: the engine's start-of-forward hook stays in place and its
        # trace checks are collectives
        values = batched_values(trainer.value_fwd, local, cfg.score_batch_size, dist)
    clock.lap("values")
    rows = rollout_rows(rollouts, rewards, ref_lp, values) if mine else []
    rows = gather_rows(dist, rows, len(chosen))
    clock.lap(None)
    merged = [Rollout(prompt_index=k, sample_index=0, prompt_ids=r["prompt_ids"], response_ids=r["response_ids"],
                      text=r["text"], logprobs=r["logprobs"], finished=r["finished"]) for k, r in enumerate(rows)]
    batch = build_batch([r["prompt_ids"] for r in rows], [r["response_ids"] for r in rows], trainer.pad_id)
    width = batch.mask.shape[1]
    old_lp = pad_ragged([r["logprobs"] for r in rows], width) * batch.mask
    ref, old_values = rows_to_tensors(rows, width)
    return merged, rows_rewards(rows), batch, old_lp, ref * batch.mask, old_values * batch.mask


def evaluate_shared(trainer, prompt_ids: list, prompts: list, generate) -> list[dict]:
    """Held-out answers and rewards, each rank its share under the gathered policy; rows in prompt order."""
    dist, eng = trainer.dist, trainer.engines
    idx = share(list(range(len(prompts))), dist)
    rows: list[dict] = []
    with eng.gathered(eng.policy):
        rollouts = generate([prompt_ids[i] for i in idx]) if idx else []
    rewards = score_share(trainer, [prompts[i] for i in idx], rollouts)
    if idx:
        rows = [{**x, "length": len(r.response_ids)} for x, r in zip(rewards.rows(), rollouts)]
    return gather_rows(dist, rows, len(prompts))


def score_share(trainer, prompts: list, rollouts: list):
    """Rewards of this rank's answers; None when it has none, except that with partitioned reward models
    (`ppo.frozen_models: zero3`) every rank scores, with nothing to score if so: each forward is a collective."""
    if not rollouts and not trainer.frozen_zero3:
        return None
    return trainer.reward_fn(prompts, [r.text for r in rollouts], [r.response_ids for r in rollouts])
