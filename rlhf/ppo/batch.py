"""PPO rollouts as tensors: right-padded sequences and answer-aligned index tensors.

Row b holds prompt (length P_b) + answer (length T_b), right-padded to L. Every per-token quantity of PPO
(log-probs, values, KL, rewards, advantages) is answer-aligned, [B, T] with T = max T_b: column i is answer
token i of the row, predicted by the hidden state at position P_b + i - 1. `positions` holds those indices,
`targets` the answer tokens and `mask` 1.0 on real answer tokens. Right padding needs no attention mask: under
a causal mask a real token never sees the pads after it, and position ids 0..L-1 are correct for every row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class RolloutBatch:
    input_ids: torch.Tensor  # [B, L] long
    positions: torch.Tensor  # [B, T] long: hidden-state index predicting answer token i
    targets: torch.Tensor  # [B, T] long: answer token ids (0 past the end)
    mask: torch.Tensor  # [B, T] float32: 1.0 on answer tokens
    prompt_lens: list[int]
    response_lens: list[int]

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def select(self, index: Sequence[int] | torch.Tensor) -> RolloutBatch:
        """Rows `index` (in that order), trimmed to their own longest sequence and answer."""
        idx = torch.as_tensor(index, dtype=torch.long)
        p = [self.prompt_lens[i] for i in idx.tolist()]
        r = [self.response_lens[i] for i in idx.tolist()]
        width = max(a + b for a, b in zip(p, r))
        t = max(r)
        return RolloutBatch(self.input_ids[idx, :width], self.positions[idx, :t], self.targets[idx, :t],
                            self.mask[idx, :t], p, r)

    def to(self, device) -> RolloutBatch:
        return RolloutBatch(self.input_ids.to(device), self.positions.to(device), self.targets.to(device),
                            self.mask.to(device), self.prompt_lens, self.response_lens)


def build_batch(prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]],
                pad_id: int) -> RolloutBatch:
    """Stack (prompt, answer) pairs; every answer must have at least one token and every prompt one token."""
    if len(prompt_ids) != len(response_ids):
        raise ValueError(f"{len(prompt_ids)} prompts but {len(response_ids)} answers")
    if not prompt_ids:
        raise ValueError("empty batch")
    p_lens = [len(p) for p in prompt_ids]
    r_lens = [len(r) for r in response_ids]
    if min(p_lens) < 1 or min(r_lens) < 1:
        raise ValueError("every prompt and every answer needs at least one token")
    width = max(a + b for a, b in zip(p_lens, r_lens))
    t = max(r_lens)
    b = len(prompt_ids)
    ids = torch.full((b, width), int(pad_id), dtype=torch.long)
    positions = torch.zeros((b, t), dtype=torch.long)
    targets = torch.zeros((b, t), dtype=torch.long)
    mask = torch.zeros((b, t), dtype=torch.float32)
    for row, (p, r) in enumerate(zip(prompt_ids, response_ids)):
        seq = list(p) + list(r)
        ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        n = len(r)
        positions[row, :n] = torch.arange(len(p) - 1, len(p) - 1 + n)
        positions[row, n:] = len(p) - 1  # any valid index: masked out
        targets[row, :n] = torch.tensor(list(r), dtype=torch.long)
        mask[row, :n] = 1.0
    return RolloutBatch(ids, positions, targets, mask, p_lens, r_lens)


def pad_ragged(values: Sequence[Sequence[float]], width: int) -> torch.Tensor:
    """[N, width] float32 from ragged per-answer lists (zeros past each end)."""
    out = torch.zeros((len(values), width), dtype=torch.float32)
    for row, v in enumerate(values):
        if len(v):
            out[row, :len(v)] = torch.as_tensor(v, dtype=torch.float32)[:width]
    return out


def iteration_prompt_indices(n_prompts: int, batch: int, iteration: int, seed: int) -> list[int]:
    """Prompts of PPO iteration `iteration` (0-based): consecutive slices of per-epoch permutations.

    A pure function of its arguments, so a resumed run draws exactly the prompts an unbroken run would.
    Within an epoch no prompt repeats; a batch larger than the prompt set spans several epochs."""
    if n_prompts < 1:
        raise ValueError("no prompts")
    out: list[int] = []
    start = iteration * batch
    cache: dict[int, list[int]] = {}
    for pos in range(start, start + batch):
        epoch, k = divmod(pos, n_prompts)
        if epoch not in cache:
            g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
            cache[epoch] = torch.randperm(n_prompts, generator=g).tolist()
        out.append(cache[epoch][k])
    return out


def derived_seed(seed: int, iteration: int, salt: int) -> int:
    """A distinct, reproducible seed per (run seed, iteration, purpose)."""
    return (seed * 1_000_003 + iteration * 7_919 + salt * 104_729) % (2**63 - 1)
