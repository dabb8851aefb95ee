"""Rewards of answers: the two reward models combined piecewise (Llama 2 sec. 3.2.3), or any other function.

A reward function takes (prompts, answer texts, answer token ids) and returns a `RewardBatch`: the combined
reward R_c on a (0, 1) scale, plus each RM's score where there are RMs. PPO and rejection sampling only ever
call this interface, so a test can plug in a synthetic reward (e.g. "fraction of answer tokens equal to X")
without any reward model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class RewardBatch:
    combined: Any  # torch float32 [N]: R_c in (0, 1) (sigmoid-scaled RM scores), or a synthetic reward
    helpful: Any = None  # R_h (sigmoid) [N], None without RMs
    safety: Any = None  # R_s (sigmoid) [N], None without RMs

    def rows(self) -> list[dict]:
        """Per answer: {"r_combined", "r_helpful", "r_safety"} as floats (None where absent)."""
        out = []
        for i in range(len(self.combined)):
            out.append({"r_combined": float(self.combined[i]),
                        "r_helpful": None if self.helpful is None else float(self.helpful[i]),
                        "r_safety": None if self.safety is None else float(self.safety[i])})
        return out


RewardFn = Callable[[Sequence[Any], Sequence[str], Sequence[Sequence[int]]], RewardBatch]


def prompt_messages(prompt) -> list[dict]:
    """A Prompt record's (or a plain dict's) messages as {"role", "content"} dicts."""
    messages = prompt["messages"] if isinstance(prompt, dict) else prompt.messages
    return [m if isinstance(m, dict) else {"role": getattr(m.role, "value", m.role), "content": m.content}
            for m in messages]


def prompt_is_safety(prompt) -> bool:
    return bool(prompt.get("is_safety", False) if isinstance(prompt, dict) else prompt.is_safety)


class TwoRewardModels:
    """R_c = R_s if is_safety(p) or R_s < threshold else R_h, on sigmoid-scaled RM scores."""

    def __init__(self, helpful, safety, threshold: float = 0.15, batch_tokens: int = 8192):
        self.helpful, self.safety = helpful, safety
        self.threshold, self.batch_tokens = threshold, batch_tokens

    def __call__(self, prompts: Sequence[Any], texts: Sequence[str],
                 response_ids: Sequence[Sequence[int]] | None = None) -> RewardBatch:
        import torch

        from chatalign.rlhf.reward_mix import piecewise_reward

        messages = [prompt_messages(p) for p in prompts]
        r_h = self.helpful.score(messages, list(texts), sigmoid=True, batch_tokens=self.batch_tokens)
        r_s = self.safety.score(messages, list(texts), sigmoid=True, batch_tokens=self.batch_tokens)
        is_safety = torch.tensor([prompt_is_safety(p) for p in prompts], dtype=torch.bool)
        r_c = piecewise_reward(r_h, r_s, is_safety, self.threshold)
        return RewardBatch(combined=torch.as_tensor(r_c, dtype=torch.float32), helpful=r_h, safety=r_s)


def load_two_reward_models(helpful_path: str, safety_path: str, threshold: float = 0.15,
                           batch_tokens: int = 8192, dtype: str = "auto",
                           max_seq_len: int | None = None) -> TwoRewardModels:
    from chatalign.reward import load_scorer

    return TwoRewardModels(load_scorer(helpful_path, dtype=dtype, max_seq_len=max_seq_len),
                           load_scorer(safety_path, dtype=dtype, max_seq_len=max_seq_len),
                           threshold, batch_tokens)


def load_reward_fn(cfg) -> TwoRewardModels:
    """The two reward models of a round recipe's `reward` section (run directories resolved as a round does)."""
    from chatalign.rlhf.lineage import resolve_run_path

    r = cfg.reward
    return load_two_reward_models(resolve_run_path(r.helpful), resolve_run_path(r.safety), r.safety_threshold,
                                  r.batch_tokens, cfg.model.dtype, r.max_seq_len)

