"""The DPO run's report.md and its plots: loss, implicit-reward accuracy and margin per step, chosen and
rejected log-probs and rewards per step, held-out accuracy per preference strength (the RM's tables)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from chatalign.plots import markdown_table, plot_curves, save_figure
from chatalign.runs import write_text_atomic


def plot_chosen_rejected(records: Sequence[dict], path: Path, title: str) -> Path | None:
    """Two panels, chosen against rejected per step: the policy's answer log-probs and the implicit rewards."""
    from chatalign.plots import _plt

    if not any("chosen_logp" in r for r in records):
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4))
    for ax, what, label in ((axes[0], "logp", "log pi(y|x) (policy)"), (axes[1], "reward", "implicit reward")):
        for side in ("chosen", "rejected"):
            pts = [(r["step"], r[f"{side}_{what}"]) for r in records if f"{side}_{what}" in r]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=side, marker="." if len(pts) < 50 else None)
        ax.set_title(label)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return save_figure(fig, path)


def data_lines(stats: dict) -> list[str]:
    src_rows = [{"source": k, **{c: v.get(c, "") for c in ("usable", "drawn", "rows_skipped",
                                                          "excluded_chosen_unsafe_rejected_safe")}}
                for k, v in stats["sources"].items()]
    return ["## Data", "",
            markdown_table(src_rows, ["source", "usable", "drawn", "rows_skipped",
                                      "excluded_chosen_unsafe_rejected_safe"]),
            f"Mix: {stats['mix_total']} pairs; {stats['pairs']} trained ({stats['too_long']} too long for "
            f"max_seq_len); {stats['answer_tokens']} scored answer tokens of {stats['tokens']}; strengths "
            f"{stats['strengths']}; median side length {stats['median_length']} tokens.", ""]


def write_report(run, cfg, stats: dict, summary: dict, evaluation: dict | None) -> None:
    from chatalign.reward.eval_report import format_tables

    records = run.read_metrics()
    plot_curves(records, ["loss", "accuracy", "reward_margin", "lr"], run.path / "training.png", "DPO training")
    plot_chosen_rejected(records, run.path / "chosen_rejected.png", "DPO: chosen vs rejected per step")
    lines = [f"# DPO run `{run.path.name}`", "",
             f"Policy and reference initialised from `{cfg.model.name}`; loss -log sigmoid(beta * ((log pi - log "
             f"pi_ref)(chosen) - (log pi - log pi_ref)(rejected))) with beta {cfg.dpo.beta} (Rafailov et al. 2023 "
             "eq. 7); reference log-probs computed once before training (`reference_logps.safetensors`).", "",
             *data_lines(stats), "## Training", "",
             f"{summary['steps']} optimizer steps of up to {cfg.train.global_batch_pairs} pairs; final loss "
             f"{_num(summary.get('final_loss'))} (log 2 = 0.6931 at the start), final batch implicit-reward accuracy "
             f"{_num(summary.get('final_train_accuracy'))}, margin {_num(summary.get('final_reward_margin'))}; "
             f"{_num(summary.get('pairs_per_s'))} pairs/s. Accuracy counts a pair when the chosen answer's "
             "implicit reward beta * (log pi - log pi_ref) is strictly higher than the rejected one's.", "",
             "![training](training.png)", "", "![chosen vs rejected](chosen_rejected.png)", ""]
    if evaluation:
        lp = evaluation["logps"]
        lines += ["## Held-out evaluation (saved model/)", "", format_tables(evaluation), "",
                  f"Mean answer log-prob, chosen: {lp['chosen_reference']:.3f} (reference) -> "
                  f"{lp['chosen_policy']:.3f} (policy); rejected: {lp['rejected_reference']:.3f} -> "
                  f"{lp['rejected_policy']:.3f}.", "",
                  "![accuracy](eval_accuracy.png)", "", "![implicit rewards](eval_scores.png)", ""]
    write_text_atomic(run.path / "report.md", "\n".join(lines) + "\n")


def _num(v) -> str:
    return "-" if v is None else f"{v:.4g}"
