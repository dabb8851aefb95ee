"""What the PPO ZeRO-3 tests read back from their workers: the per-rank reports and the statistics compared."""

import json
from pathlib import Path

STATS = ("reward", "kl", "kl_per_token", "value_mean", "return_mean", "policy_loss", "value_loss", "clip_fraction",
         "approx_kl", "entropy", "policy_grad_norm", "value_grad_norm", "heldout_reward", "response_length")


def reports(out: Path) -> list[dict]:
    """The workers' per-rank reports, rank 0 first."""
    return [json.loads(f.read_text()) for f in sorted(out.glob("report-rank*.json"))]
