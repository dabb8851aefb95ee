"""A reward scorer whose model is partitioned over the ranks with DeepSpeed ZeRO-3 inference (PPO's
`ppo.frozen_models: zero3`): each rank holds 1/N of the RM and the layers are gathered one by one in each forward.

Every packed forward is a collective, so every rank must call `score` / `score_ids` the same number of times,
also with nothing to score, and inside a call the ranks run the same number of packed rows: a rank with fewer
rows (uneven shares of a batch) runs one-token dummy forwards until the busiest rank is done.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from chatalign.reward.scorer import RewardScorer, packed_rows


class PackedScore(nn.Module):
    """The root module the engine wraps (its hooks then frame every forward): rewards of one packed row."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, position_ids, read_index):
        from chatalign.reward.model import packed_rewards

        return packed_rewards(self.model, input_ids, position_ids, read_index)


class ShardedScorer(RewardScorer):
    def __init__(self, scorer: RewardScorer, dist):
        """Partition `scorer`'s model in place (the whole copy is freed: `scorer` must not score any more)."""
        from chatalign.training.zero_inference import inference_engine

        self.engine = inference_engine(PackedScore(scorer.model), dist)
        self.dist = dist
        super().__init__(scorer.model, scorer.tokenizer, self.engine.device, scorer.max_seq_len)

    def encode(self, prompts, answers) -> list[list[int]]:
        return super().encode(prompts, answers) if answers else []

    def score_ids(self, sequences: Sequence[Sequence[int]], batch_tokens: int = 8192) -> torch.Tensor:
        from chatalign.training.zero_inference import lockstep_count

        out = torch.empty(len(sequences), dtype=torch.float32)
        rows = packed_rows(sequences, batch_tokens, self.device)
        n = lockstep_count(self.dist, len(rows))
        one = torch.zeros((1, 1), dtype=torch.long, device=self.device)
        # no_grad, not inference_mode: ZeRO-3 rewrites the gathered parameters' storage in place after the
        # forward, which tensors created in inference mode do not allow
        with torch.no_grad():
            for k in range(n):
                if k < len(rows):
                    group, (ids, pos, read) = rows[k]
                    out[torch.tensor(group)] = self.engine(ids, pos, read).float().cpu()
                else:
                    self.engine(one, one, one[0])
        return out

