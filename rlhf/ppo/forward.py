"""The forwards PPO trains through, as modules (so a DeepSpeed engine can wrap them later).

Both run the decoder once over the right-padded rows of a `RolloutBatch` and read hidden states only at the
answer-predicting positions: the LM head (49k vocabulary) or the value head is applied to [B, T] states, not
to every prompt position.
"""

from __future__ import annotations

import torch
from torch import nn

from chatalign.training.lm_loss import decoder_and_head


def gather_positions(hidden: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """hidden [B, L, H], positions [B, T] -> [B, T, H]."""
    return hidden.gather(1, positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))


class PolicyForward(nn.Module):
    """log pi(answer token) and the entropy of pi at every answer position, at temperature 1."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor, targets: torch.Tensor,
                with_entropy: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        decoder, head = decoder_and_head(self.model)
        device = input_ids.device
        hidden = decoder(input_ids=input_ids, use_cache=False).last_hidden_state
        logits = head(gather_positions(hidden, positions.to(device))).float()
        cap = getattr(getattr(self.model, "config", None), "final_logit_softcapping", None)
        if cap:
            logits = cap * torch.tanh(logits / cap)
        logprobs_all = torch.log_softmax(logits, dim=-1)
        logprobs = logprobs_all.gather(-1, targets.to(device).unsqueeze(-1)).squeeze(-1)
        entropy = None
        if with_entropy:
            from chatalign.rlhf.ppo.math import entropy_from_logits

            entropy = entropy_from_logits(logits)
        return logprobs, entropy


class ValueForward(nn.Module):
    """Per-token values V(s_t) from a reward model's decoder and scalar head (the value model's init)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        from chatalign.reward.model import decoder_and_score

        decoder, score = decoder_and_score(self.model)
        hidden = decoder(input_ids=input_ids, use_cache=False).last_hidden_state
        return score(gather_positions(hidden, positions.to(input_ids.device))).squeeze(-1).float()


def _chunks(batch, micro: int, dist):
    """Row ranges of `batch` in chunks of `micro`; with `dist`, then None (a dummy forward) until this rank has
    run as many forwards as the busiest rank (forwards through ZeRO-3 hooks are collectives)."""
    n = 0 if batch is None else len(batch)
    if dist is None:
        yield from (range(s, min(n, s + micro)) for s in range(0, n, micro))
        return
    from chatalign.training.zero_inference import lockstep_chunks

    yield from lockstep_chunks(dist, n, micro)


def _lockstep_fill(module, batch, micro: int, dist, forward, dummy) -> torch.Tensor | None:
    """[B, T] per-answer-token outputs of `forward(sub_batch, device)` over the batch in chunks of `micro` rows,
    masked; with `dist`, `dummy(one_token)` forwards until every rank has run as many as the busiest one."""
    out = None if batch is None else torch.zeros_like(batch.mask)
    dev = next(module.parameters()).device
    for idx in _chunks(batch, micro, dist):
        if idx is None:
            dummy(torch.zeros((1, 1), dtype=torch.long, device=dev))
            continue
        sub = batch.select(list(idx))
        x = forward(sub, dev)
        out[idx.start:idx.stop, :x.shape[1]] = x.float().cpu() * sub.mask
    return out


@torch.no_grad()
def batched_logprobs(policy_fwd: PolicyForward, batch, micro: int, dist=None) -> torch.Tensor | None:
    """[B, T] log-probs of the batch's answers, no graph, in chunks of `micro` rows (eval mode kept by caller).

    With `dist` the forwards run in lockstep over the ranks (see `_chunks`); `batch` None: this rank has no
    rows (returns None) but still takes part. `policy_fwd` may be a DeepSpeed engine around a PolicyForward."""
    return _lockstep_fill(
        policy_fwd, batch, micro, dist,
        lambda sub, dev: policy_fwd(sub.input_ids.to(dev), sub.positions, sub.targets, with_entropy=False)[0],
        lambda one: policy_fwd(one, one, one, with_entropy=False))


@torch.no_grad()
def batched_values(value_fwd: ValueForward, batch, micro: int, dist=None) -> torch.Tensor | None:
    """[B, T] values of the batch's answer positions; `dist` and a None `batch` as in `batched_logprobs`."""
    return _lockstep_fill(value_fwd, batch, micro, dist,
                          lambda sub, dev: value_fwd(sub.input_ids.to(dev), sub.positions),
                          lambda one: value_fwd(one, one))
