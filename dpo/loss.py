"""The DPO objective (Rafailov et al. 2023, "Direct Preference Optimization", arXiv 2305.18290).

Inputs are sequence log-probabilities: log pi(y|x) summed over the answer's tokens, for the policy and for
the frozen reference, chosen (y_w) and rejected (y_l) answer of each pair. Pure tensor functions.
"""

from __future__ import annotations


def implicit_rewards(policy_logps, ref_logps, beta: float):
    """r(x, y) = beta * (log pi(y|x) - log pi_ref(y|x)), the implicit reward of Rafailov et al. sec. 5.1."""
    return beta * (policy_logps - ref_logps)


def dpo_losses(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta: float):
    """Per-pair -log sigmoid(r(x, y_w) - r(x, y_l)) with implicit rewards r: Rafailov et al. eq. 7; not reduced."""
    import torch.nn.functional as F

    margin = implicit_rewards(policy_chosen, ref_chosen, beta) - implicit_rewards(policy_rejected, ref_rejected, beta)
    return -F.logsigmoid(margin)


def sequence_logps(token_logps, sequence_index, n_sequences: int):
    """log pi(y|x) = sum over the answer's tokens of log pi(y_t | x, y_<t) (Rafailov et al. eq. 7's log pi(y|x)),
    for `n_sequences` sequences; token i belongs to sequence sequence_index[i]."""
    out = token_logps.new_zeros(n_sequences)
    return out.index_add(0, sequence_index, token_logps)
