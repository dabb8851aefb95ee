"""One PPO optimisation phase over a batch of scored rollouts: shuffled minibatches, one gradient step each.

Policy and value model are separate networks with separate AdamW optimizers (the value model starts from a
reward model, sec. 3.2.3), so each gets its own loss, gradient clip and step. A minibatch may be split into
micro-batches for memory; their losses are weighted by answer-token counts so the step equals the one a
single forward over the minibatch would take (the PPO losses are token means over the minibatch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from chatalign.errors import RunError
from chatalign.rlhf.ppo.batch import RolloutBatch


@dataclass
class Targets:
    """Answer-aligned [B, T] tensors fixed for the whole update phase."""

    old_logprobs: torch.Tensor
    old_values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor


def minibatch_order(n: int, minibatch: int, epochs: int, generator: torch.Generator) -> list[list[int]]:
    """Row indices of each gradient step: `epochs` shuffled passes cut into minibatches."""
    steps = []
    for _ in range(epochs):
        perm = torch.randperm(n, generator=generator).tolist()
        steps.extend(perm[i:i + minibatch] for i in range(0, n, minibatch))
    return steps


def _clip(params, max_norm: float | None) -> float:
    """Total gradient norm before clipping (clipped in place to max_norm when one is set)."""
    grads = [p for p in params if p.grad is not None]
    if not grads:
        return 0.0
    return float(torch.nn.utils.clip_grad_norm_(grads, max_norm if max_norm else float("inf")))


def ppo_update(policy_fwd, value_fwd, policy_opt, value_opt, batch: RolloutBatch, targets: Targets, *,
               minibatch: int, micro_batch: int, epochs: int, clip: float, value_clip: float | None,
               grad_clip: float | None, generator: torch.Generator) -> dict:
    """Run the update phase; return means over steps of the loss terms and diagnostics."""
    sums = {"policy_loss": 0.0, "value_loss": 0.0, "clip_fraction": 0.0, "approx_kl": 0.0, "entropy": 0.0,
            "policy_grad_norm": 0.0, "value_grad_norm": 0.0}
    steps = minibatch_order(len(batch), minibatch, epochs, generator)
    # train mode only switches gradient checkpointing on (dropout is 0 everywhere, see ppo_models)
    policy_fwd.train()
    value_fwd.train()
    try:
        _run_steps(policy_fwd, value_fwd, policy_opt, value_opt, batch, targets, steps, micro_batch, clip,
                   value_clip, grad_clip, sums)
    finally:
        policy_fwd.eval()
        value_fwd.eval()
    n = max(1, len(steps))
    out = {k: v / n for k, v in sums.items()}
    out["gradient_steps"] = len(steps)
    return out


def _run_steps(policy_fwd, value_fwd, policy_opt, value_opt, batch, targets, steps, micro_batch, clip, value_clip,
               grad_clip, sums) -> None:
    from chatalign.rlhf.ppo.math import masked_mean, ppo_policy_loss, ppo_value_loss

    policy_params = [p for p in policy_fwd.parameters() if p.requires_grad]
    value_params = [p for p in value_fwd.parameters() if p.requires_grad]
    dev_p = next(policy_fwd.parameters()).device
    dev_v = next(value_fwd.parameters()).device
    for rows in steps:
        step_tokens = float(batch.mask[rows].sum()) or 1.0
        policy_opt.zero_grad(set_to_none=True)
        value_opt.zero_grad(set_to_none=True)
        step = dict.fromkeys(("policy_loss", "value_loss", "clip_fraction", "approx_kl", "entropy"), 0.0)
        for start in range(0, len(rows), micro_batch):
            part = rows[start:start + micro_batch]
            sub = batch.select(part)
            t = sub.mask.shape[1]
            weight = float(sub.mask.sum()) / step_tokens
            idx = torch.as_tensor(part, dtype=torch.long)
            old_lp, old_v = targets.old_logprobs[idx, :t], targets.old_values[idx, :t]
            adv, ret = targets.advantages[idx, :t], targets.returns[idx, :t]

            logprobs, entropy = policy_fwd(sub.input_ids.to(dev_p), sub.positions, sub.targets)
            mask_p = sub.mask.to(logprobs.device)
            pg_loss, clip_frac, approx_kl = ppo_policy_loss(logprobs, old_lp.to(logprobs.device),
                                                            adv.to(logprobs.device), mask_p, clip)
            (pg_loss * weight).backward()

            values = value_fwd(sub.input_ids.to(dev_v), sub.positions)
            mask_v = sub.mask.to(values.device)
            vf_loss = ppo_value_loss(values, old_v.to(values.device), ret.to(values.device), mask_v,
                                     value_clip if value_clip is not None else float("inf"))
            (vf_loss * weight).backward()

            step["policy_loss"] += float(pg_loss.detach()) * weight
            step["value_loss"] += float(vf_loss.detach()) * weight
            step["clip_fraction"] += float(clip_frac) * weight
            step["approx_kl"] += float(approx_kl) * weight
            step["entropy"] += float(masked_mean(entropy.detach(), mask_p)) * weight
        p_norm, v_norm = _clip(policy_params, grad_clip), _clip(value_params, grad_clip)
        if not all(math.isfinite(x) for x in (step["policy_loss"], step["value_loss"], p_norm, v_norm)):
            raise RunError(f"non-finite PPO loss or gradient (policy loss {step['policy_loss']}, value loss "
                           f"{step['value_loss']}, grad norms {p_norm}, {v_norm}): the round stopped before "
                           "applying it; the last checkpoint is intact. Lower the learning rate or raise ppo.beta")
        sums["policy_grad_norm"] += p_norm
        sums["value_grad_norm"] += v_norm
        policy_opt.step()
        value_opt.step()
        for k, v in step.items():
            sums[k] += v
