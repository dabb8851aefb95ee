"""chatalign.reward: helpfulness and safety reward models (Llama 2 sec. 3.2.2).

Later stages use only the scoring API: `load_scorer(run_dir_or_model_dir).score(prompts, answers)`.
Importing this package is cheap; torch loads when a scorer is made.
"""

from __future__ import annotations


def load_scorer(path_or_run_dir, device=None, dtype: str = "auto", max_seq_len: int | None = None):
    """A RewardScorer for a reward run directory or a saved RM (see chatalign.reward.scorer)."""
    from chatalign.reward.scorer import load_scorer as _load

    return _load(path_or_run_dir, device=device, dtype=dtype, max_seq_len=max_seq_len)


__all__ = ["load_scorer"]
