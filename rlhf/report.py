"""The round's report.md: lineage, rejection-sampling curves, PPO curves, reward vs KL, win rates."""

from __future__ import annotations

from pathlib import Path

from chatalign.plots import markdown_table, plot_curves, save_figure
from chatalign.runs import write_text_atomic

PPO_KEYS = ("reward", "kl", "response_length", "clip_fraction", "value_loss", "entropy")


def plot_reward_vs_kl(records: list[dict], path: Path, title: str, heldout_label: str = "held-out (greedy)") -> Path | None:
    """Training reward against KL to the reference, one point per iteration (colour = iteration), plus the
    held-out reward at the evaluated iterations."""
    from chatalign.plots import _plt

    pts = [r for r in records if "kl" in r and "reward" in r]
    if not pts:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    sc = ax.scatter([r["kl"] for r in pts], [r["reward"] for r in pts], c=[r["step"] for r in pts], cmap="viridis",
                    s=18, label="train batch")
    ax.plot([r["kl"] for r in pts], [r["reward"] for r in pts], lw=0.6, alpha=0.5, color="gray")
    held = [r for r in pts if r.get("heldout_reward") is not None]
    if held:
        ax.plot([r["kl"] for r in held], [r["heldout_reward"] for r in held], marker="s", color="tab:red",
                label=heldout_label)
    fig.colorbar(sc, ax=ax, label="iteration")
    ax.set_xlabel("KL(pi || pi_ref) per answer (nats)")
    ax.set_ylabel("mean combined reward R_c")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def lineage_lines(links) -> list[str]:
    """Markdown list of the chain, newest first; the first link is this round (its status is not final yet)."""
    lines = []
    for i, link in enumerate(links):
        what = f"round {link.round} ({link.mode})" if link.is_round else (link.stage or "model")
        status = "this round" if i == 0 else link.status
        lines.append(f"- {what}: `{link.path}`" + (f" [{status}]" if status else ""))
    return lines


def _thin(rows: list[dict], most: int) -> list[dict]:
    """At most `most` rows, evenly spaced, always keeping the first and the last."""
    if len(rows) <= most:
        return rows
    step = (len(rows) - 1) / (most - 1)
    return [rows[round(i * step)] for i in range(most)]


def _f(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _gain(summary: dict, label: str) -> str:
    g, se = summary.get(f"gain_vs_{label}"), summary.get(f"gain_se_vs_{label}")
    return "" if g is None else f"{g:+.4f} ± {se:.4f}"


def _kl(summary: dict, label: str) -> str:
    kl, se, per_token = (summary.get(f"{k}_vs_{label}") for k in ("kl", "kl_se", "kl_per_token"))
    return "" if kl is None else f"{kl:.3f} ± {se:.3f} ({per_token:.4f}/token)"


def heldout_section(summary: dict, ev, n_prompts: int) -> list[str]:
    """Markdown lines of the held-out comparison (rewards, gains with standard errors, win rates); [] if none."""
    ev_rows = []
    for label in ("this", "previous", "sft"):
        if label == "sft" and summary.get("sft_is_previous"):
            continue
        name = "previous (= SFT)" if label == "previous" and summary.get("sft_is_previous") else label
        if summary.get(f"heldout_reward_{label}") is not None:
            ev_rows.append({"model": name, "R_c": summary[f"heldout_reward_{label}"],
                            "R_h": summary.get(f"heldout_helpful_{label}"), "R_s": summary.get(f"heldout_safety_{label}"),
                            "answer tokens": summary.get(f"heldout_length_{label}"),
                            "rule checks passed": summary.get(f"heldout_check_pass_{label}"),
                            "R_c gain of this ± SE": _gain(summary, label),
                            "KL(this ‖ it), nats/answer": _kl(summary, label),
                            "win rate of this": summary.get(f"win_rate_vs_{label}", ""),
                            "win/loss/tie": summary.get(f"wins_vs_{label}", "")})
    if not ev_rows:
        return []
    how = ("greedy answers" if ev.temperature == 0 else
           f"{ev.samples_per_prompt} sampled answer(s) per prompt at T={ev.temperature}, seed {ev.seed}, the "
           "same draws for every model")
    return [f"## Held-out evaluation ({n_prompts} prompts, {how}, judged by the reward models)", "",
            markdown_table(ev_rows, ["model", "R_c", "R_h", "R_s", "answer tokens", "rule checks passed",
                                     "R_c gain of this ± SE", "KL(this ‖ it), nats/answer", "win rate of this",
                                     "win/loss/tie"]),
            "Win rate = win / (win + loss) on each prompt's mean R_c; ties count for neither. Gain = mean over "
            "prompts of the difference of each prompt's mean R_c, ± its standard error (paired: same prompts, "
            "same draws); a gain within about 2 SE of 0 is not a measured improvement. KL(this ‖ it) = mean over this "
            "model's answers of log pi_this - log pi_it (needs answers sampled at T=1): how far the round moved "
            "the policy. `chatalign rlhf eval` re-runs this comparison on more prompts or samples.", ""]


def write_round_report(ctx, summary: dict, links) -> Path:
    run = ctx.run
    records = run.read_metrics()
    iters = [r for r in records if r.get("step", 0) >= 1 and "reward" in r]
    times = ", ".join(f"{p} {summary[f'time_{p}_s']:.0f} s" for p in ("rs", "ppo", "eval") if f"time_{p}_s" in summary)
    parts = [f"# RLHF round {ctx.round} ({ctx.cfg.mode})", "", f"Started from `{ctx.start}`.",
             f"Wall time in the process that finished the round: {times}.", "",
             "## Lineage (newest first)", "", *lineage_lines(links), ""]
    parts += heldout_section(summary, ctx.cfg.eval, len(ctx.heldout))
    if "rs_prompts" in summary:
        parts += ["## Rejection sampling", "",
                  f"{summary['rs_prompts']} prompts x K={summary['rs_num_samples']} at T={summary['rs_temperature']}: "
                  f"mean sample R_c {summary['rs_sample_reward_mean']:.4f}, mean selected (best of K) "
                  f"{summary['rs_selected_reward_mean']:.4f}; {summary['rs_train_rows']} training answers "
                  f"({summary['rs_from_earlier_rounds']} from earlier rounds {summary['rs_pooled_from_rounds']}); "
                  f"{summary.get('rs_samples_unusable', 0)} samples unusable (empty, or cut at max_new_tokens); "
                  f"{summary.get('rs_finished_fraction', 0):.0%} of samples ended their turn.", "",
                  markdown_table(summary["rs_reward_vs_k"], ["k", "max", "median", "prompts"])]
        if len(summary.get("rs_reward_vs_temperature", [])) > 1:
            parts += [markdown_table(summary["rs_reward_vs_temperature"], ["temperature", "k", "max", "median"])]
        parts += ["![reward vs k](rs_reward_vs_k.png)", ""]
    if iters:
        plot_curves(iters, PPO_KEYS, run.path / "ppo_curves.png", f"round {ctx.round}: PPO", x="step")
        es = ctx.cfg.ppo.early_stopping
        plot_reward_vs_kl(records, run.path / "reward_vs_kl.png", f"round {ctx.round}: reward vs KL",
                          "held-out (greedy)" if es.temperature == 0 else
                          f"held-out ({es.samples_per_prompt} samples/prompt, T={es.temperature})")
        phases = ["generation", "scoring", "reference", "values", "training"]
        mean_t = {p: sum(r.get(f"time_{p}_s", 0.0) for r in iters) / len(iters) for p in phases}
        parts += ["## PPO", "", f"{summary.get('ppo_iterations')} iterations; stop: {summary.get('ppo_stop_reason')}; "
                  f"held-out R_c {_f(summary.get('ppo_heldout_reward_start'))} at the start, best "
                  f"{_f(summary.get('ppo_heldout_reward_best'))} at iteration {summary.get('ppo_best_iteration')} "
                  f"(the round's model is the policy of iteration {summary.get('ppo_model_iteration')}).", "",
                  "Mean seconds per iteration by phase: " + ", ".join(f"{p} {v:.1f}" for p, v in mean_t.items()), "",
                  markdown_table(_thin([r for r in records if "reward" in r or "heldout_reward" in r], 40),
                                 ["step", "reward", "reward_helpful", "reward_safety", "kl", "response_length",
                                  "clip_fraction", "value_loss", "entropy", "heldout_reward"]),
                  "![ppo](ppo_curves.png)", "", "![reward vs kl](reward_vs_kl.png)", ""]
    path = run.path / "report.md"
    write_text_atomic(path, "\n".join(parts) + "\n")
    return path
