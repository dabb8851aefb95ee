"""The policy's side of DPO: answer log-probabilities of packed pairs, and the loss module the training loop runs.

The decoder runs once over a padding-free packed row (per-document attention, chatalign/training/
packed_attention.py) and the LM head only at the positions whose next token is an answer token, as the SFT
loss does (chatalign/training/lm_loss.py): the full-vocabulary logits of prompt positions are never built.
"""

from __future__ import annotations

import torch
from torch import nn

from chatalign.text.packing import IGNORE
from chatalign.training.lm_loss import decoder_and_head
from chatalign.training.packed_attention import packed_decoder_forward


def answer_logps(model: nn.Module, input_ids: torch.Tensor, position_ids: torch.Tensor, labels: torch.Tensor,
                 label_seq: torch.Tensor, n_sequences: int, chunk: int = 4096) -> torch.Tensor:
    """log pi(answer | prompt) (float32) of each of the `n_sequences` sequences of a packed row [1, T]."""
    from chatalign.dpo.loss import sequence_logps

    decoder, head = decoder_and_head(model)
    device = next(model.parameters()).device
    hidden = packed_decoder_forward(decoder, input_ids.to(device), position_ids.to(device)).last_hidden_state
    flat_h = hidden.reshape(-1, hidden.shape[-1])
    flat_y = labels.reshape(-1).to(device)
    idx = (flat_y != IGNORE).nonzero(as_tuple=True)[0]
    parts = []
    for start in range(0, idx.numel(), chunk):
        sel = idx[start:start + chunk]
        logits = head(flat_h[sel]).float()
        parts.append(-nn.functional.cross_entropy(logits, flat_y[sel], reduction="none"))
    token_logps = torch.cat(parts) if parts else flat_h.new_zeros(0, dtype=torch.float32)
    return sequence_logps(token_logps, label_seq.to(device), n_sequences)


class PackedDPOLoss(nn.Module):
    """One module for the training loop (and DeepSpeed): the summed DPO loss (eq. 7) of a packed batch's pairs,
    against the reference log-probs the batch carries."""

    def __init__(self, model: nn.Module, beta: float):
        super().__init__()
        self.model = model
        self.beta = beta

    def forward(self, input_ids, position_ids, labels, label_seq, ref_logps, **_):
        from chatalign.dpo.loss import dpo_losses, implicit_rewards

        logps = answer_logps(self.model, input_ids, position_ids, labels, label_seq, ref_logps.numel())
        ref = ref_logps.to(logps.device)
        losses = dpo_losses(logps[0::2], logps[1::2], ref[0::2], ref[1::2], self.beta)
        with torch.no_grad():
            chosen = implicit_rewards(logps[0::2], ref[0::2], self.beta)
            rejected = implicit_rewards(logps[1::2], ref[1::2], self.beta)
            aux = {"correct": float((chosen > rejected).sum()), "pairs_seen": float(chosen.numel()),
                   "margin_sum": float((chosen - rejected).sum()), "chosen_reward_sum": float(chosen.sum()),
                   "rejected_reward_sum": float(rejected.sum()), "chosen_logp_sum": float(logps[0::2].sum()),
                   "rejected_logp_sum": float(logps[1::2].sum())}
        return losses.sum(), aux


def train_metrics(aux: dict) -> dict:
    """Step metrics from the summed aux values of PackedDPOLoss (means over the step's pairs)."""
    n = aux.get("pairs_seen") or 1.0
    return {"accuracy": aux["correct"] / n, "reward_margin": aux["margin_sum"] / n,
            "chosen_reward": aux["chosen_reward_sum"] / n, "rejected_reward": aux["rejected_reward_sum"] / n,
            "chosen_logp": aux["chosen_logp_sum"] / n, "rejected_logp": aux["rejected_logp_sum"] / n}


def freeze_lower_layers(model: nn.Module, trainable_layers: int) -> list[str]:
    """Train the top `trainable_layers` decoder layers, the final norm and an untied LM head; return the
    trainable names (chatalign.training.top_layers)."""
    from chatalign.training.top_layers import train_top_layers

    decoder, head = decoder_and_head(model)
    return train_top_layers(model, decoder, head, trainable_layers)
