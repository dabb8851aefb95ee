"""The PPO update phase under DeepSpeed engines: the same gradient steps as `ppo_update`, split across ranks.

Every rank holds the whole scored batch (see `ppo_dist`), so the minibatch order is the single-process one;
each minibatch's rows are dealt to the ranks (`rows[rank::world]`) and cut into micro-batches. A micro-batch's
loss is weighted by its answer tokens over the minibatch's (all ranks), times the world size because DeepSpeed
averages gradients over the ranks: the summed gradient is the one a single forward over the minibatch gives.
Every rank runs as many forwards as the others (a rank short of rows repeats one at weight 0), because ZeRO-3
gathers parameters with collectives inside each forward and backward.
"""

from __future__ import annotations

import math

import torch

from chatalign.errors import RunError
from chatalign.rlhf.ppo.dist import PPOEngines, all_reduce_sums
from chatalign.rlhf.ppo.update import minibatch_order

STATS = ("policy_loss", "value_loss", "clip_fraction", "approx_kl", "entropy")


def ppo_update_ds(engines: PPOEngines, dist, batch, targets, *, minibatch: int, micro_batch: int, epochs: int,
                  clip: float, value_clip: float | None, generator: torch.Generator) -> dict:
    """Run the update phase; return the means over steps that `ppo_update` returns."""
    sums = dict.fromkeys((*STATS, "policy_grad_norm", "value_grad_norm"), 0.0)
    steps = minibatch_order(len(batch), minibatch, epochs, generator)
    engines.policy.train()
    engines.value.train()
    try:
        for rows in steps:
            step = _one_step(engines, dist, batch, targets, rows, micro_batch, clip, value_clip)
            for k, v in step.items():
                sums[k] += v
    finally:
        engines.policy.eval()
        engines.value.eval()
    n = max(1, len(steps))
    out = {k: v / n for k, v in sums.items()}
    out["gradient_steps"] = len(steps)
    return out


def _one_step(engines: PPOEngines, dist, batch, targets, rows, micro_batch, clip, value_clip) -> dict:
    from chatalign.rlhf.ppo.math import masked_mean, ppo_policy_loss, ppo_value_loss

    step_tokens = float(batch.mask[rows].sum()) or 1.0
    mine = rows[dist.rank::dist.world_size]
    parts = [mine[k:k + micro_batch] for k in range(0, len(mine), micro_batch)]
    n_micro = max(1, math.ceil(math.ceil(len(rows) / dist.world_size) / micro_batch))
    parts += [[]] * (n_micro - len(parts))
    pe, ve = engines.policy, engines.value
    dev_p, dev_v = pe.device, ve.device
    local = dict.fromkeys(STATS, 0.0)
    for k, part in enumerate(parts):
        dummy = not part
        part = part or rows[:1]
        sub = batch.select(part)
        t = sub.mask.shape[1]
        weight = 0.0 if dummy else float(sub.mask.sum()) / step_tokens
        idx = torch.as_tensor(part, dtype=torch.long)
        old_lp, old_v = targets.old_logprobs[idx, :t], targets.old_values[idx, :t]
        adv, ret = targets.advantages[idx, :t], targets.returns[idx, :t]
        last = k == len(parts) - 1

        logprobs, entropy = pe(sub.input_ids.to(dev_p), sub.positions, sub.targets)
        mask_p = sub.mask.to(logprobs.device)
        pg_loss, clip_frac, approx_kl = ppo_policy_loss(logprobs, old_lp.to(logprobs.device),
                                                        adv.to(logprobs.device), mask_p, clip)
        pe.set_gradient_accumulation_boundary(last)
        pe.backward(pg_loss * (weight * dist.world_size), scale_wrt_gas=False)

        values = ve(sub.input_ids.to(dev_v), sub.positions)
        mask_v = sub.mask.to(values.device)
        vf_loss = ppo_value_loss(values, old_v.to(values.device), ret.to(values.device), mask_v,
                                 value_clip if value_clip is not None else float("inf"))
        ve.set_gradient_accumulation_boundary(last)
        ve.backward(vf_loss * (weight * dist.world_size), scale_wrt_gas=False)

        if not dummy:
            local["policy_loss"] += float(pg_loss.detach()) * weight
            local["value_loss"] += float(vf_loss.detach()) * weight
            local["clip_fraction"] += float(clip_frac) * weight
            local["approx_kl"] += float(approx_kl) * weight
            local["entropy"] += float(masked_mean(entropy.detach(), mask_p)) * weight
    step = all_reduce_sums(dist, local)
    if not all(math.isfinite(step[k]) for k in ("policy_loss", "value_loss")):
        raise RunError(f"non-finite PPO loss (policy {step['policy_loss']}, value {step['value_loss']}): the "
                       "round stopped before applying it; the last checkpoint is intact. Lower the learning "
                       "rate or raise ppo.beta")
    pe.step()
    ve.step()
    norms = [pe.get_global_grad_norm(), ve.get_global_grad_norm()]  # None when the engine computed none
    step["policy_grad_norm"], step["value_grad_norm"] = (float("nan") if x is None else float(x) for x in norms)
    if any(x is not None and not math.isfinite(float(x)) for x in norms):
        # DeepSpeed clips inside step(), so the update is already applied: say so, and stop the run here
        raise RunError(f"non-finite PPO gradient norm (policy {step['policy_grad_norm']}, value "
                       f"{step['value_grad_norm']}); the last checkpoint is intact. Lower the learning rate")
    return step

