"""The RLHF rounds' part of the pipeline report: win rates per round and PPO curves, read from each round's
manifest and metrics.jsonl."""

from __future__ import annotations

from pathlib import Path

from chatalign.pipeline.report_sections import Ctx, not_run, num, pct
from chatalign.plots import _plt, save_figure

PPO_PANELS = (("reward", "mean reward R_c"), ("kl", "KL to reference (nats)"), ("response_length", "answer tokens"))


def plot_ppo(rounds: dict[str, list[dict]], path: Path) -> Path:
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(PPO_PANELS), figsize=(4.2 * len(PPO_PANELS), 3.2), squeeze=False)
    for ax, (key, title) in zip(axes[0], PPO_PANELS):
        for label, recs in rounds.items():
            pts = [(r["step"], r[key]) for r in recs if r.get(key) is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=label)
        ax.set_title(title)
        ax.set_xlabel("PPO iteration")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("PPO per iteration")
    return save_figure(fig, path)


def section(ctx: Ctx) -> list:
    blocks: list = [("h", 2, "RLHF rounds")]
    done = ctx.done("rlhf")
    if not done:
        return blocks + not_run(ctx, "rlhf", "PPO curves or win rates")
    rows = []
    for s in done:
        m = s.metrics
        rows.append({"round": f"{m.get('round', '?')} ({s.name})", "mode": m.get("mode", s.config.get("mode")),
                     "win rate vs previous": f"{pct(m.get('win_rate_vs_previous'))} ({m.get('wins_vs_previous', '-')})",
                     "win rate vs SFT": "= previous" if m.get("sft_is_previous") else
                     f"{pct(m.get('win_rate_vs_sft'))} ({m.get('wins_vs_sft', '-')})",
                     "held-out R_c": num(m.get("heldout_reward_this")),
                     "R_c previous": num(m.get("heldout_reward_previous")),
                     "gain ± SE": "-" if m.get("gain_vs_previous") is None else
                     f"{m['gain_vs_previous']:+.4f} ± {m.get('gain_se_vs_previous', float('nan')):.4f}",
                     "KL vs previous (nats/answer)": num(m.get("kl_vs_previous"), 3),
                     "rule checks passed": pct(m.get("heldout_check_pass_this")),
                     "answer tokens": num(m.get("heldout_length_this"), 3)})
    if any(s.metrics.get("heldout_reward_this") is not None for s in done):
        blocks += [("h", 3, "Win rates per round"),
                   ("p", "Answers to the held-out prompts (greedy, or seeded samples: the round's `eval` settings) "
                         "judged by the two reward models (R_c); win rate = wins / (wins + losses) on each prompt's "
                         "mean R_c, ties count for neither, in brackets win/loss/tie; gain = mean R_c difference to "
                         "the previous model ± its paired standard error (about 2 SE or less is noise); KL of the "
                         "round's model from the previous one on its own answers sampled at T=1."),
                   ("table", list(rows[0]), rows)]
    else:
        blocks.append(("p", "No held-out evaluation in these rounds (no `data.heldout`): no win rates."))
    ppo = {f"round {s.metrics.get('round', '?')}": [r for r in s.records() if r.get("step", 0) >= 1 and "reward" in r]
           for s in done}
    ppo = {k: v for k, v in ppo.items() if v}
    blocks.append(("h", 3, "PPO: reward, KL and answer length per iteration"))
    if ppo:
        png = plot_ppo(ppo, ctx.root / "report_ppo.png")
        blocks += [("p", "Training batches: mean combined reward, KL of the policy to the reference per answer, "
                         "mean answer length in tokens."), ("img", png.name, "PPO curves")]
    else:
        blocks.append(("p", "No PPO iterations (rejection sampling only)."))
    return blocks
