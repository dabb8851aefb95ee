"""GAtt outputs a person reads: adherence vs turn (PNG), the Table 30-shaped table, the run's report.md."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from chatalign.gatt.evaluate import format_table, heuristic_note
from chatalign.gatt.instructions import FAMILIES
from chatalign.plots import markdown_table


def n_segments(by_turn: dict) -> str:
    """How many dialogues each turn range averages over: "n=10 (turns 1-6), n=2 (turns 7-20)"."""
    parts: list[list[int]] = []  # [n, first turn, last turn]
    for t in sorted(int(k) for k in by_turn):
        n = by_turn[str(t)]["n"]
        if parts and parts[-1][0] == n and parts[-1][2] == t - 1:
            parts[-1][2] = t
        else:
            parts.append([n, t, t])
    return ", ".join(f"n={n} (turn{'s' if a != b else ''} {a}{'-' + str(b) if a != b else ''})" for n, a, b in parts)


def plot_adherence(results: dict[str, dict], path: Path, turns: Sequence[int], title: str) -> Path:
    """One panel for "all" and one per family present: adherence (0-1) against the turn, a line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["all"] + [f for f in FAMILIES if any(f in row for r in results.values() for row in r["by_turn"].values())]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.3 * len(keys), 3.2), squeeze=False, sharey=True)
    for ax, key in zip(axes[0], keys, strict=True):
        for label, res in results.items():
            pts = sorted((int(t), row[key]) for t, row in res["by_turn"].items() if key in row)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=label)
        for t in turns:
            ax.axvline(t, color="grey", alpha=0.25, lw=0.8)
        ax.set_title(key)
        ax.set_xlabel("turn")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("adherence")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{title}; dialogues per turn: {n_segments(next(iter(results.values()))['by_turn'])}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def eval_markdown(results: dict[str, dict], turns: Sequence[int], png_name: str) -> str:
    """The evaluation section: settings, table, PNG, which checkers are heuristics."""
    first = next(iter(results.values()))
    window = first.get("max_prompt_tokens")
    windowed = {label: r["generation"].get("prompts_windowed", 0) for label, r in results.items()}
    lines = [f"Instruction only in the **{first['placement'].replace('_', ' ')}** message; greedy answers of at "
             f"most {first['max_new_tokens']} new tokens; the model's own answers stay in the context.", ""]
    if window and any(windowed.values()):
        lines += [f"Prompt window: {window} tokens; rounds after the first were left out of "
                  f"{', '.join(f'{n} prompts ({label})' for label, n in windowed.items())}. With a window the "
                  "instruction is never far back, so late-turn adherence is an upper bound.", ""]
    lines += ["Adherence (per family: share of dialogues with that constraint; count in brackets):", "",
              format_table(results, turns), f"![adherence]({png_name})", "", heuristic_note(), ""]
    return "\n".join(lines)


def write_eval_files(results: dict[str, dict], target: Path, turns: Sequence[int], title: str,
                     prefix: str = "eval_gatt") -> dict[str, Path]:
    """`<prefix>.json` (everything), `<prefix>.md` (the section) and `<prefix>.png` in `target`."""
    target.mkdir(parents=True, exist_ok=True)
    png = plot_adherence(results, target / f"{prefix}.png", turns, title)
    js = target / f"{prefix}.json"
    js.write_text(json.dumps({"turns": list(turns), "results": results}, indent=1), encoding="utf-8")
    md = target / f"{prefix}.md"
    md.write_text(eval_markdown(results, turns, png.name), encoding="utf-8")
    return {"json": js, "markdown": md, "png": png}


def write_report(run_path: Path, cfg, summary: dict, synth: dict | None, results: dict[str, dict]) -> Path:
    lines = [f"# GAtt run `{run_path.name}`", "",
             f"Starting model: `{cfg.model.name}`; fine-tuned model: `train/model` (also `model/`).", ""]
    if synth:
        s = synth["synthesis"]
        r = synth["rows"]
        lines += ["## Synthesis", "",
                  f"{s['dialogues']} dialogues, {s['turns_answered']} answers kept from {s['candidates_sampled']} "
                  f"sampled (instruction in every user turn, {cfg.synthesis.candidates_per_turn} candidate(s) per "
                  f"turn); {s['turns_passing']} kept answers pass every constraint; {s['ended_early']} dialogues "
                  "ended at an empty answer.", "",
                  f"Training rows: {r['rows']} (instruction in the {cfg.synthesis.placement.replace('_', ' ')} "
                  f"message only, loss on the last answer only); rejected by the checkers: {r['rejected']}, cut "
                  f"after a failure: {r['cut_after_failure']}, below min_turn: {r['below_min_turn']}.", "",
                  "Pass rate of kept answers by family during synthesis:", "",
                  markdown_table([synth["pass_rates"]], list(synth["pass_rates"])), "",
                  "Rows per family: " + ", ".join(f"{k} {v}" for k, v in r["rows_per_family"].items()), ""]
        if "cpu_seconds" in synth:
            lines += [f"Synthesis took {synth['cpu_seconds']} CPU-seconds.", ""]
    if "train" in summary:
        t = summary["train"]
        lines += ["## Training", "", f"{t.get('steps')} steps over {t.get('packed_rows')} packed rows, final loss "
                  f"{t.get('final_loss')}; see `train/report.md`.", ""]
    if results:
        lines += ["## Adherence before and after GAtt", "", eval_markdown(results, cfg.eval.turns, "adherence.png")]
        cpu = [f"{label} {res['cpu_seconds']}" for label, res in results.items() if "cpu_seconds" in res]
        if cpu:
            lines += ["Evaluation CPU-seconds: " + ", ".join(cpu) + ".", ""]
    path = run_path / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
