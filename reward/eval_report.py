"""The held-out evaluation of a reward model as a person reads it: markdown tables (printed by `chatalign eval
reward`, embedded in report.md), accuracy bars and score distributions."""

from __future__ import annotations

import json
from pathlib import Path

from chatalign.plots import _plt, markdown_table, plot_bars, save_figure
from chatalign.reward.evaluate import TABLE8_COLUMNS
from chatalign.runs import write_text_atomic


def plot_accuracy_bars(report: dict, path: Path, title: str) -> Path:
    """Accuracy per strength column (Table 8) for each test set, and per safety bin where there are several."""
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
    """Histograms of the chosen and the rejected answers' scores, on shared bins."""
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
    return save_figure(fig, path)


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def format_tables(report: dict) -> str:
    """The evaluation as markdown tables (printed by `chatalign eval reward`, embedded in report.md)."""
    o = report["overall"]
    lines = [f"Held-out accuracy: **{_pct(o['accuracy'])}%** over {o['pairs']} pairs "
             f"(mean score gap chosen - rejected {o['mean_gap']:.3f}).", "",
             "Accuracy (%) per preference strength, as in Llama 2 Table 8:", "",
             markdown_table([{"test set": k, **{c: _pct(v.get(c)) for c in (*TABLE8_COLUMNS, "avg")}}
                             for k, v in report["table8"].items()], ["test set", *TABLE8_COLUMNS, "avg"]),
             "Per strength label:", "",
             markdown_table([{"strength": k, "accuracy %": _pct(v["accuracy"]), "pairs": v["pairs"]}
                             for k, v in report["per_strength"].items()], ["strength", "accuracy %", "pairs"])]
    if "per_safety_bin" in report:
        lines += ["Per safety bin:", "",
                  markdown_table([{"bin": k, "accuracy %": _pct(v["accuracy"]), "pairs": v["pairs"]}
                                  for k, v in report["per_safety_bin"].items()], ["bin", "accuracy %", "pairs"])]
    if len(report["per_source"]) > 1:
        lines += ["Per source:", "",
                  markdown_table([{"source": k, "accuracy %": _pct(v["accuracy"]), "pairs": v["pairs"]}
                                  for k, v in report["per_source"].items()], ["source", "accuracy %", "pairs"])]
    excluded = {k: v for k, v in report.get("excluded_chosen_unsafe_rejected_safe", {}).items() if v}
    if excluded:
        lines += [f"Left out (chosen unsafe, rejected safe): {excluded}.", ""]
    return "\n".join(lines)


def write_eval_files(report: dict, out_dir, title: str, prefix: str = "eval") -> dict[str, Path]:
    """eval.json, eval.md and the PNGs (accuracy bars, score distributions) into out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / f"{prefix}.json", "md": out / f"{prefix}.md"}
    write_text_atomic(files["json"], json.dumps(report, indent=1) + "\n")
    files["accuracy_png"] = plot_accuracy_bars(report, out / f"{prefix}_accuracy.png", title)
    files["scores_png"] = plot_score_distributions(report, out / f"{prefix}_scores.png", title)
    md = [format_tables(report), "", f"![accuracy]({files['accuracy_png'].name})", "",
          f"![scores]({files['scores_png'].name})", ""]
    write_text_atomic(files["md"], "\n".join(md))
    return files
