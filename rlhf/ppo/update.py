"""PPO's update phase over one Experience: shuffled minibatches, one gradient step each on the clipped policy
loss and the clipped value loss (Schulman et al. 2017; Llama 2 sec. 3.2.3).

Policy and value model are separate networks with separate AdamW optimizers (the value model starts from a
reward model), so each gets its own loss, gradient clip and step, through its backend (plain torch, or a
DeepSpeed engine). Every rank holds the whole Experience, so the minibatch order is the single-process one; a
minibatch's rows are dealt to the ranks and cut into micro-batches (`rank_micro_batches`, as the SFT loop
does). A micro-batch's loss is weighted by its answer tokens over the minibatch's (all ranks), times the world
size because the gradients are averaged over the ranks: the step equals the one a single forward over the
minibatch would take (the PPO losses are token means over the minibatch).
"""

from __future__ import annotations

import math

import torch

from chatalign.errors import RunError
from chatalign.training.distributed import all_reduce_sums, rank_micro_batches

STATS = ("policy_loss", "value_loss", "clip_fraction", "approx_kl", "entropy")
POLICY_STATS = ("policy_loss", "clip_fraction", "approx_kl", "entropy", "policy_grad_norm")


def minibatch_order(n: int, minibatch: int, epochs: int, generator: torch.Generator) -> list[list[int]]:
    """Row indices of each gradient step: `epochs` shuffled passes cut into minibatches."""
    steps = []
    for _ in range(epochs):
        perm = torch.randperm(n, generator=generator).tolist()
        steps.extend(perm[i:i + minibatch] for i in range(0, n, minibatch))
    return steps


class PPOUpdate:
    """Gradient steps of the policy and value backends on an Experience."""

    def __init__(self, policy, value, dist, *, minibatch: int, micro_batch: int, epochs: int, clip: float,
                 value_clip: float | None):
        self.policy, self.value, self.dist = policy, value, dist
        self.minibatch, self.micro_batch, self.epochs = minibatch, micro_batch, epochs
        self.clip, self.value_clip = clip, value_clip if value_clip is not None else float("inf")
        self.train_policy = True

    def __call__(self, exp, generator: torch.Generator, train_policy: bool = True) -> dict:
        """Run the update phase; return the means over steps of the loss terms and diagnostics. Without
        `train_policy` (a value warm-up iteration) only the value model learns, and the record has no policy
        terms."""
        self.train_policy = train_policy
        sums = dict.fromkeys((*STATS, "policy_grad_norm", "value_grad_norm"), 0.0)
        steps = minibatch_order(len(exp.batch), self.minibatch, self.epochs, generator)
        # train mode only switches gradient checkpointing on (dropout is 0 everywhere, see ppo.models)
        self.policy.train()
        self.value.train()
        try:
            for rows in steps:
                for k, v in self.step(exp, rows).items():
                    sums[k] += v
        finally:
            self.policy.eval()
            self.value.eval()
        out = {k: v / max(1, len(steps)) for k, v in sums.items() if train_policy or k not in POLICY_STATS}
        out["gradient_steps"] = len(steps)
        return out

    def step(self, exp, rows: list[int]) -> dict:
        """One gradient step of each network on the minibatch `rows`; its loss terms and gradient norms."""
        step_tokens = float(exp.mask[rows].sum()) or 1.0
        local = dict.fromkeys(STATS, 0.0)
        for mb in rank_micro_batches(rows, self.dist, self.micro_batch):
            weight = 0.0 if mb.dummy else float(exp.mask[mb.items].sum()) / step_tokens
            terms = self.accumulate(exp, mb.items, weight * self.dist.world_size, mb.last)
            if not mb.dummy:
                for k, v in terms.items():
                    local[k] += v * weight
        stats = all_reduce_sums(self.dist, local)
        stats["policy_grad_norm"], stats["value_grad_norm"] = self.apply(stats)
        return stats

    def accumulate(self, exp, part: list[int], scale: float, last: bool) -> dict:
        """Backward of both losses on the rows `part`, scaled by `scale`; the unscaled loss terms."""
        from chatalign.rlhf.ppo.math import masked_mean, ppo_policy_loss, ppo_value_loss

        sub = exp.batch.select(part)
        t = sub.mask.shape[1]
        idx = torch.as_tensor(part, dtype=torch.long)
        terms = {}
        if self.train_policy:
            logprobs, entropy = self.policy(sub.input_ids.to(self.policy.device), sub.positions, sub.targets)
            dev = logprobs.device
            pg_loss, clip_frac, approx_kl = ppo_policy_loss(logprobs, exp.old_logprobs[idx, :t].to(dev),
                                                            exp.advantages[idx, :t].to(dev), sub.mask.to(dev),
                                                            self.clip)
            self.policy.backward(pg_loss * scale, last)
            terms = {"policy_loss": float(pg_loss.detach()), "clip_fraction": float(clip_frac),
                     "approx_kl": float(approx_kl), "entropy": float(masked_mean(entropy.detach(), sub.mask.to(dev)))}
        values = self.value(sub.input_ids.to(self.value.device), sub.positions)
        dev_v = values.device
        vf_loss = ppo_value_loss(values, exp.values[idx, :t].to(dev_v), exp.returns[idx, :t].to(dev_v),
                                 sub.mask.to(dev_v), self.value_clip)
        self.value.backward(vf_loss * scale, last)
        return {**terms, "value_loss": float(vf_loss.detach())}

    def apply(self, stats: dict) -> tuple[float, float]:
        """Step both networks unless a loss (or a gradient norm known before the step) is not finite: then the
        round stops with the last checkpoint intact. Returns the two gradient norms (NaN where unknown)."""
        before = (self.policy.clip_grads() if self.train_policy else None,
                  self.value.clip_grads())  # None: an engine clips inside step()
        known = [stats["policy_loss"], stats["value_loss"], *(x for x in before if x is not None)]
        if not all(math.isfinite(x) for x in known):
            raise RunError(f"non-finite PPO loss or gradient (policy loss {stats['policy_loss']}, value loss "
                           f"{stats['value_loss']}, grad norms {before[0]}, {before[1]}): the round stopped before "
                           "applying it; the last checkpoint is intact. Lower the learning rate or raise ppo.beta")
        after = (self.policy.step() if self.train_policy else None, self.value.step())
        norms = [b if b is not None else a for b, a in zip(before, after)]
        if any(x is not None and not math.isfinite(x) for x in norms):
            # an engine clips inside step(), so the update is already applied: say so, and stop the run here
            raise RunError(f"non-finite PPO gradient norm (policy {norms[0]}, value {norms[1]}); the last "
                           "checkpoint is intact. Lower the learning rate")
        return tuple(float("nan") if x is None else x for x in norms)
