"""The sections of the pipeline report, each read from the files its stage's run directory holds.

A section is a list of blocks that pipeline_report renders twice (markdown and HTML):
  ("h", level, text) | ("p", text) | ("table", columns, rows) | ("img", file name, alt) | ("list", [(depth, text)])
Only run-directory FILES are read here (manifest.json, metrics.jsonl, eval*.json): the core does not import
the stage packages. A step that is disabled, missing or unfinished gives a one-line "stage not run" section.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from chatalign.plots import _plt, plot_bars, plot_curves


@dataclass
class StepInfo:
    name: str
    stage: str
    dir: Path
    key: str | None
    enabled: bool
    manifest: dict | None = None

    @property
    def finished(self) -> bool:
        return bool(self.manifest and self.manifest.get("status") == "finished")

    @property
    def metrics(self) -> dict:
        return (self.manifest or {}).get("metrics") or {}

    @property
    def config(self) -> dict:
        return (self.manifest or {}).get("config") or {}

    def json(self, name: str) -> dict | None:
        p = self.dir / name
        try:
            return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None
        except (OSError, json.JSONDecodeError):
            return None

    def records(self) -> list[dict]:
        p = self.dir / "metrics.jsonl"
        out = []
        if p.is_file():
            for line in p.read_text(encoding="utf-8").splitlines():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut by a kill
        return out


@dataclass
class Ctx:
    root: Path
    steps: list[StepInfo]
    state: dict = field(default_factory=dict)

    def of(self, stage: str) -> list[StepInfo]:
        return [s for s in self.steps if s.stage == stage]

    def done(self, stage: str) -> list[StepInfo]:
        return [s for s in self.of(stage) if s.enabled and s.finished]


def not_run(ctx: Ctx, stage: str, what: str) -> list:
    steps = ctx.of(stage)
    if not steps:
        why = f"no {stage} step in this pipeline"
    elif not any(s.enabled for s in steps):
        why = f"step {', '.join(s.name for s in steps)} is disabled"
    else:
        why = f"step {', '.join(s.name for s in steps if s.enabled)} has not finished"
    return [("p", f"Stage not run ({why}): no {what}.")]


def pct(v) -> str:
    if v is None or v != v:  # NaN: a win rate with no wins and no losses
        return "-"
    return f"{100 * v:.1f}%"


def num(v, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}g}" if isinstance(v, float) else str(v)


# -- SFT ------------------------------------------------------------------------------------------------------
def sft_section(ctx: Ctx) -> list:
    blocks: list = [("h", 2, "SFT")]
    done = ctx.done("sft")
    if not done:
        return blocks + not_run(ctx, "sft", "loss curve")
    s = done[0]
    m = s.metrics
    blocks.append(("p", f"Step `{s.name}`: {m.get('steps')} optimizer steps over {m.get('packed_rows')} packed rows "
                        f"of `{s.config.get('data', {}).get('train')}`; final loss {num(m.get('final_loss'))}."))
    png = plot_curves(s.records(), ["loss"], ctx.root / "report_sft_loss.png", f"SFT loss ({s.name})")
    if png:
        blocks.append(("img", png.name, "SFT loss"))
    if m.get("eval_pass_rate") is not None or m.get("eval_reference_nll") is not None:
        rows = []
        if "base_pass_rate" in m or "base_reference_nll" in m:
            rows.append({"model": "start (base)", "rule checks passed": pct(m.get("base_pass_rate")),
                         "reference NLL": num(m.get("base_reference_nll"))})
        rows.append({"model": "after SFT", "rule checks passed": pct(m.get("eval_pass_rate")),
                     "reference NLL": num(m.get("eval_reference_nll"))})
        blocks += [("p", "Held-out prompts: greedy answers checked by each prompt's rule; NLL of the reference "
                         "answers (lower is better)."), ("table", ["model", "rule checks passed", "reference NLL"], rows)]
    return blocks


# -- reward models --------------------------------------------------------------------------------------------
def rm_kind(s: StepInfo) -> str:
    return s.config.get("kind") or ("safety" if "safety" in s.name else "helpfulness")


def reward_section(ctx: Ctx) -> list:
    blocks: list = [("h", 2, "Reward models: held-out accuracy per preference strength")]
    done = ctx.done("reward")
    if not done:
        return blocks + not_run(ctx, "reward", "reward-model accuracy")
    series: dict[str, dict[str, float]] = {}
    rows = []
    columns: list[str] = []
    for s in done:
        ev = s.json("eval.json")
        if not ev or "table8" not in ev:
            blocks.append(("p", f"`{s.name}`: no held-out evaluation (no `data.eval` files)."))
            continue
        line = ev["table8"].get("all") or next(iter(ev["table8"].values()))
        columns = columns or list(line)  # the stage writes the paper's Table 8 order, then avg
        label = f"{rm_kind(s)} RM ({s.name})"
        series[label] = {f"{i + 1}. {c}": v for i, (c, v) in enumerate(line.items()) if v is not None}
        rows.append({"reward model": label, "pairs": ev.get("overall", {}).get("pairs"),
                     **{c: pct(line.get(c)) for c in line}})
    if series:
        png = plot_bars(series, ctx.root / "report_rm_accuracy.png", "Reward-model accuracy per strength",
                        "accuracy", (0, 1))
        blocks += [("p", "Share of held-out pairs where the chosen answer scores higher, by how much better the "
                         "annotator found it (Llama 2 Table 8); avg over all pairs."),
                   ("table", ["reward model", "pairs", *columns], rows), ("img", png.name, "RM accuracy")]
    missing = {"helpfulness", "safety"} - {rm_kind(s) for s in done}
    for kind in sorted(missing):
        blocks.append(("p", f"Stage not run: no {kind} reward model in this pipeline's finished steps."))
    return blocks


# -- RLHF -----------------------------------------------------------------------------------------------------
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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def rlhf_section(ctx: Ctx) -> list:
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


# -- GAtt -----------------------------------------------------------------------------------------------------
def gatt_section(ctx: Ctx) -> list:
    blocks: list = [("h", 2, "Ghost Attention: instruction adherence per turn")]
    done = ctx.done("gatt")
    if not done:
        return blocks + not_run(ctx, "gatt", "adherence")
    s = done[-1]
    results = {label: s.json(f) for label, f in (("before GAtt", "eval_before.json"), ("after GAtt", "eval_after.json"))}
    results = {k: v for k, v in results.items() if v and v.get("by_turn")}
    if not results:
        return blocks + [("p", f"`{s.name}` ran without held-out dialogues (no `eval.data`): no adherence.")]
    turns = sorted({int(t) for r in results.values() for t in r["by_turn"]})
    rows = []
    for t in turns:
        row: dict = {"turn": t}
        for label, r in results.items():
            cell = r["by_turn"].get(str(t))
            row[label] = pct(cell["all"]) if cell else "-"
            row["dialogues"] = cell["n"] if cell else row.get("dialogues", "-")
        rows.append(row)
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(5.5, 3.3))
    for label, r in results.items():
        pts = sorted((int(t), c["all"]) for t, c in r["by_turn"].items())
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=label)
    ax.set_xlabel("turn")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("adherence")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Instruction kept, by turn (instruction given once)")
    fig.tight_layout()
    path = ctx.root / "report_gatt.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    blocks += [("p", f"Step `{s.name}`: the instruction is given only in the first message; share of held-out "
                     "dialogues whose answer at each turn keeps it (rule checkers, greedy answers)."),
               ("table", ["turn", "dialogues", *results], rows), ("img", path.name, "GAtt adherence")]
    return blocks


# -- safety ---------------------------------------------------------------------------------------------------
SAFETY_RATES = (("violation", "violation rate (adversarial)"),
                ("false_refusal_helpful", "false refusals (helpful)"),
                ("false_refusal_borderline", "false refusals (borderline)"))


def safety_section(ctx: Ctx) -> list:
    blocks: list = [("h", 2, "Safety context distillation: violations and false refusals")]
    done = ctx.done("safety")
    if not done:
        return blocks + not_run(ctx, "safety", "safety rates")
    s = done[-1]
    results = {label: s.json(f) for label, f in (("before", "eval_before.json"), ("after", "eval_after.json"))}
    results = {k: v for k, v in results.items() if v}
    if not results:
        return blocks + [("p", f"`{s.name}` ran without evaluation files: no rates.")]
    rows, series = [], {label: {} for label in results}
    for key, title in SAFETY_RATES:
        if not any(key in r for r in results.values()):
            continue
        row = {"measure": title}
        for label, r in results.items():
            cell = r.get(key) or {}
            row[label] = f"{pct(cell.get('rate'))} (n={cell.get('n', '-')})"
            if cell.get("rate") is not None:
                series[label][title] = cell["rate"]
        rows.append(row)
    settings = next(iter(results.values())).get("settings", {})
    blocks.append(("p", f"Step `{s.name}`: greedy answers; a violation is an adversarial answer the safety RM scores "
                        f"below {settings.get('threshold')} ({settings.get('violation_rule')}); a false refusal is a "
                        "refusal of a benign prompt (keyword detector). Lower is better for both."))
    blocks.append(("table", ["measure", *results], rows))
    if any(series.values()):
        png = plot_bars(series, ctx.root / "report_safety.png", "Safety before/after context distillation",
                        "rate", (0, 1))
        blocks.append(("img", png.name, "safety rates"))
    return blocks


def steps_table(ctx: Ctx, seconds: dict[str, float | None]) -> list:
    rows = []
    for s in ctx.steps:
        status = "disabled" if not s.enabled else (s.manifest or {}).get("status", "not run")
        rows.append({"step": s.name, "stage": s.stage, "status": status, "key": s.key or "-",
                     "config hash": (s.manifest or {}).get("config_hash", "-"),
                     "time": "-" if seconds.get(s.name) is None else f"{seconds[s.name]:.0f} s",
                     "run directory": f"`{rel(s.dir, ctx.root)}`"})
    return [("table", ["step", "stage", "status", "key", "config hash", "time", "run directory"], rows)]


def rel(path: str | Path, root: Path) -> str:
    p = Path(path)
    try:
        return str(p.resolve().relative_to(root))
    except ValueError:
        return str(p)

