"""A batch split over the ranks and put back together: each rank samples, scores and runs the frozen and value
forwards on its share of the prompts (`share`: rows rank, rank + world, ...), turns its answers into plain
per-answer rows, and the rows are all-gathered back into batch order (`gather_rows`), so that whitening, GAE
and the logged statistics are computed on the whole batch, the same on every rank, exactly as one process
computes them from the same answers. In one process the share is the whole batch and gathering returns it.
"""

from __future__ import annotations

import torch

from chatalign.rlhf.ppo.batch import RolloutBatch, build_batch, pad_ragged
from chatalign.rlhf.reward_fn import RewardBatch


def score_share(frozen, prompts: list, rollouts: list) -> RewardBatch | None:
    """Rewards of this rank's answers; None when it has none, except that with partitioned reward models
    (`ppo.frozen_models: zero3`) every rank scores, with nothing to score if so: each forward is a collective."""
    if not rollouts and not frozen.zero3:
        return None
    return frozen.reward_fn(prompts, [r.text for r in rollouts], [r.response_ids for r in rollouts])


def rollout_rows(rollouts, rewards: RewardBatch, ref_logprobs: torch.Tensor, values: torch.Tensor) -> list[dict]:
    """Per-answer records of one rank's share: what the whole-batch arithmetic needs, as plain lists."""
    per = rewards.rows()
    out = []
    for i, r in enumerate(rollouts):
        n = len(r.response_ids)
        out.append({"prompt_ids": r.prompt_ids, "response_ids": r.response_ids, "text": r.text,
                    "logprobs": list(r.logprobs), "finished": bool(r.finished),
                    "ref_logprobs": ref_logprobs[i, :n].tolist(), "values": values[i, :n].tolist(), **per[i]})
    return out


def rows_batch(rows: list[dict], pad_id: int) -> RolloutBatch:
    return build_batch([r["prompt_ids"] for r in rows], [r["response_ids"] for r in rows], pad_id)


def rows_tensor(rows: list[dict], key: str, batch: RolloutBatch) -> torch.Tensor:
    """[N, T] answer-aligned values of `key` (log-probs, values) from merged rows, zero past each answer."""
    return pad_ragged([r[key] for r in rows], batch.mask.shape[1]) * batch.mask


def rows_rewards(rows: list[dict]) -> RewardBatch:
    """The merged rows' RewardBatch (float32 tensors; helpful/safety None where any row has none)."""

    def column(key):
        vals = [r[key] for r in rows]
        return None if any(v is None for v in vals) else torch.tensor(vals, dtype=torch.float32)

    return RewardBatch(combined=column("r_combined"), helpful=column("r_helpful"), safety=column("r_safety"))


def rows_rollouts(rows: list[dict]) -> list:
    """The merged answers as Rollouts, in batch order."""
    from chatalign.rollout.engine import Rollout

    return [Rollout(prompt_index=k, sample_index=0, prompt_ids=r["prompt_ids"], response_ids=r["response_ids"],
                    text=r["text"], logprobs=r["logprobs"], finished=r["finished"]) for k, r in enumerate(rows)]


def mean_or_none(x) -> float | None:
    return None if x is None else float(torch.as_tensor(x).float().mean())
