"""Turning two reward models' scores into the one scalar PPO maximises (Llama 2, sec. 3.2.3), and win rates.

Scores here are probabilities in (0, 1): the sigmoid of a reward model's raw output. That is the scale on
which the paper's safety threshold 0.15 is defined, and `logit` undoes the sigmoid before whitening.
Pure torch functions; tensors of shape [B] unless said otherwise.
"""

from __future__ import annotations

import torch

# Llama 2 sec. 3.2.3: with this threshold the safety RM flagged unsafe answers at precision 0.89, recall 0.55.
SAFETY_THRESHOLD = 0.15


def piecewise_reward(r_help: torch.Tensor, r_safe: torch.Tensor, is_safety: torch.Tensor,
                     threshold: float = SAFETY_THRESHOLD) -> torch.Tensor:
    """R_c = R_s if is_safety(p) or R_s < threshold else R_h (Llama 2 paper, sec. 3.2.3, eq. 3)."""
    r_help, r_safe = torch.as_tensor(r_help), torch.as_tensor(r_safe)
    use_safety = torch.as_tensor(is_safety, device=r_safe.device).bool() | (r_safe < threshold)
    return torch.where(use_safety, r_safe, r_help)


def logit(p: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """log(p / (1 - p)) with p clamped to [eps, 1 - eps]: the inverse sigmoid (Llama 2 paper, sec. 3.2.3)."""
    p = torch.as_tensor(p)
    # float64 inside: in float32 1 - 1e-6 is not representable and the clamp at 1 would lose symmetry.
    q = p.double().clamp(eps, 1.0 - eps)
    out = torch.log(q) - torch.log1p(-q)
    return out.to(p.dtype) if p.is_floating_point() else out.float()


def whiten(x: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) over all elements, population variance; mean kept if not shift_mean
    (Llama 2 paper, sec. 3.2.3; Ziegler et al. 2019 normalise rewards the same way)."""
    mean = x.mean()
    var = ((x - mean) ** 2).mean()
    out = (x - mean) * torch.rsqrt(var + eps)
    return out if shift_mean else out + mean


def combined_score(r_help: torch.Tensor, r_safe: torch.Tensor, is_safety: torch.Tensor,
                   threshold: float = SAFETY_THRESHOLD, eps: float = 1e-6) -> torch.Tensor:
    """R~c = whiten(logit(R_c)) over the batch, the score added at the last answer token (Llama 2, sec. 3.2.3)."""
    return whiten(logit(piecewise_reward(r_help, r_safe, is_safety, threshold), eps))


def transform_reward(r_c: torch.Tensor, kind: str) -> torch.Tensor:
    """R~c per answer from R_c: whiten(logit(R_c)) (Llama 2 paper, sec. 3.2.3), logit(R_c), or R_c as is (`raw`);
    a batch of one is not whitened (its variance is 0)."""
    if kind == "raw":
        return r_c
    x = logit(r_c)
    return whiten(x) if kind == "whiten_logit" and len(x) > 1 else x


def win_rate(wins, losses) -> float:
    """wins / (wins + losses), ties excluded (Llama 2 paper, sec. 4.4 / fig. 17); nan when there is no decision."""
    wins, losses = float(wins), float(losses)
    if wins < 0 or losses < 0:
        raise ValueError(f"win_rate: negative counts (wins={wins}, losses={losses})")
    decided = wins + losses
    return wins / decided if decided > 0 else float("nan")
