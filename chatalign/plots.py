"""Plots and markdown reports a person reads instead of metrics.jsonl."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Lay out `fig`, write it to `path` (PNG, parent folders made) and free it."""
    import os

    from chatalign.runs import fault_disk_full, temp_file_beside

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file_beside(path, f".{path.stem}-", path.suffix)
    os.close(fd)
    try:  # a temp file renamed into place: a full disk never leaves half a PNG
        fig.savefig(tmp, dpi=110)
        fault_disk_full(path)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        _plt().close(fig)
    return path


def plot_curves(records: Sequence[dict], keys: Sequence[str], path: Path, title: str,
                x: str = "step") -> Path | None:
    """One panel per key against `x`; keys absent from every record are left out."""
    keys = [k for k in keys if any(k in r for r in records)]
    if not keys:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        pts = [(r[x], r[key]) for r in records if key in r and r[key] is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="." if len(pts) < 50 else None)
        ax.set_title(key)
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_bars(groups: dict[str, dict[str, float]], path: Path, title: str, ylabel: str,
              ylim: tuple[float, float] | None = None) -> Path:
    """Grouped bars: groups = {series name: {category: value}} (e.g. base vs tuned per task)."""
    plt = _plt()
    cats = sorted({c for g in groups.values() for c in g})
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(cats) * max(1, len(groups))), 3.4))
    width = 0.8 / max(1, len(groups))
    for i, (name, vals) in enumerate(groups.items()):
        xs = [j + i * width for j in range(len(cats))]
        ax.bar(xs, [vals.get(c, 0.0) for c in cats], width=width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(cats))], cats, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    ax.legend()
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "".join("| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |\n" for r in rows)
