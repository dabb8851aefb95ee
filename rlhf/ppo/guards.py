"""Guards that stop a PPO round before a bad iteration is trained on: a non-finite reward or KL, the policy
running away from the reference (`ppo.guards.max_kl`), a saturated reward (`ppo.guards.max_abs_reward`)."""

from __future__ import annotations

import math
from pathlib import Path

from chatalign.errors import RunError


def check_guards(guards, iteration: int, record: dict, checkpoints: Path) -> None:
    """Raise a RunError naming every bound iteration `iteration` (0-based) broke, and the fix."""
    problems = []
    if not math.isfinite(record["reward"]) or not math.isfinite(record["kl"]):
        problems.append(f"non-finite reward ({record['reward']}) or KL ({record['kl']})")
    if guards.max_kl is not None and record["kl"] > guards.max_kl:
        problems.append(f"mean KL to the reference {record['kl']:.3g} nats per answer exceeds "
                        f"ppo.guards.max_kl={guards.max_kl} (the policy ran away from the reference: lower "
                        "ppo.optim.lr or raise ppo.beta)")
    abs_r = record.get("abs_logit_reward")
    if guards.max_abs_reward is not None and abs_r is not None and abs_r > guards.max_abs_reward:
        problems.append(f"mean |logit R_c| {abs_r:.3g} exceeds ppo.guards.max_abs_reward={guards.max_abs_reward} "
                        "(reward hacking or a saturated reward model: inspect the samples)")
    if problems:
        raise RunError(f"PPO stopped at iteration {iteration + 1}: " + "; ".join(problems) +
                       f". Checkpoints of completed iterations are in {checkpoints}")
