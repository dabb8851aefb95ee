"""Reward vs number of samples K and vs temperature: the shape of Llama 2's Figure 7, from the samples drawn.

With K scored samples per prompt, the expected max (or median) of a k-sample draw, k = 1..K, is computed
exactly over all k-subsets of the K samples (no resampling noise), then averaged over prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb
from pathlib import Path


def expected_order_statistic(values: Sequence[float], k: int, m: int) -> float:
    """E[m-th smallest of a uniformly random k-subset of `values`] (1 <= m <= k <= len(values)).

    The j-th smallest value (1-based) is the m-th smallest of a subset when the subset takes m-1 of the j-1
    values below it and k-m of the n-j above it: weight C(j-1, m-1) C(n-j, k-m) / C(n, k)."""
    n = len(values)
    if not 1 <= m <= k <= n:
        raise ValueError(f"need 1 <= m <= k <= n, got m={m}, k={k}, n={n}")
    ordered = sorted(values)
    total = comb(n, k)
    return sum(v * comb(j - 1, m - 1) * comb(n - j, k - m) for j, v in enumerate(ordered, start=1)) / total


def expected_max(values: Sequence[float], k: int) -> float:
    """E[max of k samples drawn without replacement from `values`] (Llama 2 Fig. 7, "max")."""
    return expected_order_statistic(values, k, k)


def expected_median(values: Sequence[float], k: int) -> float:
    """E[median of k samples drawn without replacement from `values`] (Fig. 7, "median")."""
    if k % 2:
        return expected_order_statistic(values, k, (k + 1) // 2)
    return 0.5 * (expected_order_statistic(values, k, k // 2) + expected_order_statistic(values, k, k // 2 + 1))


def reward_vs_k(scores_per_prompt: Sequence[Sequence[float]]) -> list[dict]:
    """[{k, max, median, prompts}] for k = 1..max K; prompts with fewer than k samples sit out that k."""
    kmax = max((len(s) for s in scores_per_prompt), default=0)
    rows = []
    for k in range(1, kmax + 1):
        usable = [s for s in scores_per_prompt if len(s) >= k]
        rows.append({"k": k, "max": sum(expected_max(s, k) for s in usable) / len(usable),
                     "median": sum(expected_median(s, k) for s in usable) / len(usable), "prompts": len(usable)})
    return rows


def reward_vs_temperature(scores: dict[float, Sequence[Sequence[float]]]) -> list[dict]:
    """[{temperature, max, median, prompts}]: max and median over each prompt's K samples, averaged."""
    rows = []
    for temp in sorted(scores):
        per_prompt = [s for s in scores[temp] if s]
        if not per_prompt:
            continue
        k = min(len(s) for s in per_prompt)
        rows.append({"temperature": temp, "k": k,
                     "max": sum(expected_max(s, k) for s in per_prompt) / len(per_prompt),
                     "median": sum(expected_median(s, k) for s in per_prompt) / len(per_prompt),
                     "prompts": len(per_prompt)})
    return rows


def plot_rs_curves(vs_k: list[dict], vs_temp: list[dict], path: Path, title: str) -> Path:
    from chatalign.plots import _plt, save_figure

    plt = _plt()
    panels = 2 if len(vs_temp) > 1 else 1
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 3.4), squeeze=False)
    ax = axes[0][0]
    ks = [r["k"] for r in vs_k]
    ax.plot(ks, [r["max"] for r in vs_k], marker="o", label="max of k")
    ax.plot(ks, [r["median"] for r in vs_k], marker="o", label="median of k")
    ax.set_xlabel("samples per prompt (k)")
    ax.set_xticks(ks)
    ax.set_ylabel("combined reward R_c")
    ax.set_title("reward vs samples")
    ax.grid(alpha=0.3)
    ax.legend()
    if panels == 2:
        ax = axes[0][1]
        ts = [r["temperature"] for r in vs_temp]
        ax.plot(ts, [r["max"] for r in vs_temp], marker="o", label=f"max of {vs_temp[0]['k']}")
        ax.plot(ts, [r["median"] for r in vs_temp], marker="o", label="median")
        ax.set_xlabel("temperature")
        ax.set_title("reward vs temperature")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return save_figure(fig, path)
