"""The reward run's report.md and its plots: training curves, held-out accuracy bars, score distributions."""

from __future__ import annotations

import json
from pathlib import Path

from chatalign.plots import markdown_table, plot_bars, plot_curves


def plot_accuracy_bars(report: dict, path: Path, title: str) -> Path:
    """Accuracy per strength column (Table 8) for each test set, and per safety bin where there are several."""
    from chatalign.reward.evaluate import TABLE8_COLUMNS

    # plot_bars orders categories by name: number them to keep the paper's order
    names = {c: f"{i + 1}:{c}" for i, c in enumerate((*TABLE8_COLUMNS, "avg"))}
    table = report["table8"]
    if len(table) == 2:  # "all" and a single test set: the same numbers twice
        table = {k: v for k, v in table.items() if k != "all"}
    series = {k: {names[c]: v for c, v in row.items() if v is not None} for k, row in table.items()}
    bins = {b: v["accuracy"] for b, v in report.get("per_safety_bin", {}).items() if v["accuracy"] is not None}
    if len(bins) > 1:
        target = series["all"] if "all" in series else next(iter(series.values()))
        target.update({f"bin:{b}": acc for b, acc in bins.items()})
    return plot_bars(series, path, f"{title}: held-out accuracy", "accuracy", (0, 1))


def plot_score_distributions(report: dict, path: Path, title: str) -> Path:
    from chatalign.plots import _plt

    plt = _plt()
    chosen, rejected = report["scores"]["chosen"], report["scores"]["rejected"]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    lo, hi = min(chosen + rejected), max(chosen + rejected)
    bins = [lo + (hi - lo) * k / 30 for k in range(31)] if hi > lo else 10
    ax.hist(chosen, bins=bins, alpha=0.55, label=f"chosen (mean {sum(chosen) / len(chosen):.2f})")
    ax.hist(rejected, bins=bins, alpha=0.55, label=f"rejected (mean {sum(rejected) / len(rejected):.2f})")
    ax.set_xlabel("reward score")
    ax.set_ylabel("answers")
    ax.set_title(f"{title}: held-out scores")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(run, cfg, data_stats: dict, summary: dict, evaluation: dict | None) -> None:
    from chatalign.reward.evaluate import format_tables

    records = run.read_metrics()
    plot_curves(records, ["loss", "accuracy", "reward_gap", "lr"], run.path / "training.png",
                f"{cfg.kind} reward model training")
    src_rows = [{"source": k, **{c: v.get(c, "") for c in ("usable", "drawn", "rows_skipped",
                                                          "excluded_chosen_unsafe_rejected_safe")}}
                for k, v in data_stats["sources"].items()]
    lines = [f"# {cfg.kind.capitalize()} reward model `{run.path.name}`", "",
             f"Initialised from `{cfg.model.name}`; scalar head on the last answer token; ranking loss "
             f"-log(sigmoid(r_c - r_r - m)) with margin table `{json.dumps(data_stats['margin_table'])}`, "
             f"default strength `{cfg.default_strength}`.", "",
             "## Data", "",
             markdown_table(src_rows, ["source", "usable", "drawn", "rows_skipped",
                                       "excluded_chosen_unsafe_rejected_safe"]),
             f"Mix: {data_stats['mix_total']} pairs; {data_stats['pairs']} trained "
             f"({data_stats['too_long']} too long for max_seq_len); strengths {data_stats['strengths']}; "
             f"safety bins {data_stats['safety_bins']}; median side length {data_stats['median_length']} tokens.",
             "", "## Training", "",
             f"{summary['steps']} optimizer steps of up to {cfg.train.global_batch_pairs} pairs; final loss "
             f"{_num(summary.get('final_loss'))}, final batch accuracy {_num(summary.get('final_train_accuracy'))}, "
             f"{_num(summary.get('pairs_per_s'))} pairs/s.", "", "![training](training.png)", ""]
    if evaluation:
        lines += ["## Held-out evaluation", "", format_tables(evaluation), "",
                  "![accuracy](eval_accuracy.png)", "", "![scores](eval_scores.png)", ""]
    (run.path / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def append_eval_section(report_md: Path, heading: str, body: str) -> None:
    """Add (or replace) a `## heading` section of an existing report.md (chatalign eval reward)."""
    text = report_md.read_text(encoding="utf-8") if report_md.is_file() else ""
    marker = f"\n## {heading}\n"
    if marker in text:
        head, _, rest = text.partition(marker)
        nxt = rest.find("\n## ")
        text = head + (rest[nxt:] if nxt >= 0 else "\n")
    report_md.write_text(text.rstrip("\n") + "\n" + marker + "\n" + body.rstrip("\n") + "\n", encoding="utf-8")


def _num(v) -> str:
    return "-" if v is None else f"{v:.4g}"
