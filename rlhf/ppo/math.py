"""PPO arithmetic for language-model RLHF: masked statistics, KL estimators, per-token rewards, GAE, losses.

Conventions: per-token tensors are [B, T] with answers right-padded; `mask` is 1.0 on answer tokens and 0.0
on padding. Means are over all answer tokens of the batch (each token weighs the same). Pure torch, no
model code; every function is checked against hand-worked numbers in tests/rlhf/test_ppo_math.py.
"""

from __future__ import annotations

import torch

KL_ESTIMATORS = ("k1", "k3", "abs", "mse")


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """sum(x * mask) / sum(mask), over `dim` or all elements (Ziegler et al. 2019 / TRL-style masked statistics)."""
    mask = mask.to(x.dtype)
    if dim is None:
        return (x * mask).sum() / mask.sum()
    return (x * mask).sum(dim) / mask.sum(dim)


def masked_var(x: torch.Tensor, mask: torch.Tensor, unbiased: bool = False) -> torch.Tensor:
    """Variance of the masked elements, population (or Bessel-corrected) (Ziegler et al. 2019 whitening)."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    if unbiased:
        n = mask.to(x.dtype).sum()
        if n < 2:
            raise ValueError("masked_var(unbiased=True) needs at least two unmasked elements")
        var = var * n / (n - 1)
    return var


def masked_whiten(values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True,
                  eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) with masked statistics; padding set to 0 (Schulman et al. 2017 adv. normalisation)."""
    mean, var = masked_mean(values, mask), masked_var(values, mask)
    out = (values - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * mask.to(values.dtype)


def kl_per_token(logp: torch.Tensor, ref_logp: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(pi || pi_ref) from tokens sampled from pi (Schulman 2020 "Approximating KL"; Ziegler et al. 2019).

    With d = logp - ref_logp (log pi(x) - log pi_ref(x) at the sampled token x):
    - "k1":  d. Unbiased; one token's value can be negative, only its expectation is >= 0. Its gradient
             through the reward is the one Ziegler et al. and the Llama 2 paper use.
    - "k3":  exp(-d) - 1 + d, i.e. r - 1 - log r with r = pi_ref / pi. Unbiased and >= 0 per token, lower
             variance than k1 when the policies are close; it grows steeply where pi_ref << pi.
    - "abs": |d|. Biased upward, >= 0.
    - "mse": d^2 / 2 (Schulman's k2). Biased, >= 0, close to KL when the policies are close.
    """
    d = logp - ref_logp
    if estimator == "k1":
        return d
    if estimator == "k3":
        return torch.expm1(-d) + d
    if estimator == "abs":
        return d.abs()
    if estimator == "mse":
        return 0.5 * d * d
    raise ValueError(f"unknown KL estimator {estimator!r}; expected one of {', '.join(KL_ESTIMATORS)}")


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last unmasked position of each row [B]; every row needs at least one."""
    present = mask.bool()
    if not bool(present.any(-1).all()):
        raise ValueError("a row of the response mask is empty: every answer needs at least one token")
    positions = torch.arange(mask.shape[-1], device=mask.device).expand_as(present)
    return torch.where(present, positions, -1).amax(-1)


def token_rewards(score: torch.Tensor, kl: torch.Tensor, beta: float, response_mask: torch.Tensor) -> torch.Tensor:
    """r_t = -beta * KL_t on answer tokens, plus the sequence score on the last one (Ziegler et al. 2019; Llama 2 sec. 3.2.3)."""
    mask = response_mask.to(kl.dtype)
    last = last_token_index(response_mask)
    rows = torch.arange(kl.shape[0], device=kl.device)
    return (-beta * kl * mask).index_put((rows, last), score.to(kl.dtype), accumulate=True)


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation, A_t = sum_l (gamma*lam)^l delta_{t+l}, returns = A + V (Schulman et al. 2015 GAE).

    delta_t = r_t + gamma * V_{t+1} - V_t, with V = 0 after the answer's last token (the episode ends there).
    Padding positions get advantage and return 0.
    """
    mask = mask.to(values.dtype)
    steps = rewards.shape[-1]
    advantages = torch.zeros_like(values)
    next_adv = torch.zeros_like(values[:, 0])
    next_value = torch.zeros_like(values[:, 0])
    for t in reversed(range(steps)):
        m = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        adv = (delta + gamma * lam * next_adv) * m
        advantages[:, t] = adv
        # A padding position passes nothing back: the next real step (earlier t) sees V = 0 and A = 0 beyond
        # the answer's end.
        next_adv = adv
        next_value = values[:, t] * m
    returns = (advantages + values) * mask
    return advantages, returns


def ppo_policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                    clip: float = 0.2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clipped surrogate loss mean(max(-A r, -A clip(r, 1-eps, 1+eps))), r = pi/pi_old (Schulman et al. 2017 PPO, eq. 7).

    Returns (loss, clip_fraction, approx_kl): the fraction of tokens where the clipped term is the larger
    (those get no gradient), and KL(pi_old || pi) estimated per token as (r - 1) - log r (k3, >= 0).
    """
    log_ratio = logp - old_logp
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip, 1.0 + clip)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        clip_fraction = masked_mean((clipped > unclipped).to(logp.dtype), mask)
        approx_kl = masked_mean(torch.expm1(log_ratio) - log_ratio, mask)
    return loss, clip_fraction, approx_kl


def ppo_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
                   clip: float = 0.2) -> torch.Tensor:
    """0.5 * mean(max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2)) (Schulman et al. 2017 PPO; as in OpenAI baselines)."""
    clipped = old_values + (values - old_values).clamp(-clip, clip)
    return 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """H = logsumexp(z) - sum softmax(z) * z over the last dim, per position (entropy bonus of Schulman et al. 2017)."""
    logits = logits.float()
    return torch.logsumexp(logits, dim=-1) - (torch.softmax(logits, dim=-1) * logits).sum(-1)
