"""GAtt outputs a person reads: adherence vs turn (PNG), the Table 30-shaped tables, the run's report.md."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from chatalign.gatt.evaluate import format_table, heuristic_note, result_kinds
from chatalign.gatt.summary import PLACED
from chatalign.plots import markdown_table, save_figure
from chatalign.runs import write_text_atomic

SUITES = {"in_distribution": "training kinds, bundled held-out dialogues (in-distribution)",
          "independent": "held-out kinds, data/independent (never trained)"}


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


def _panel(ax, curves: dict[str, dict], key: str, title: str, turns: Sequence[int]) -> None:
    for label, by_turn in curves.items():
        pts = sorted((int(t), row[key]) for t, row in by_turn.items() if key in row)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=label)
    for t in turns:
        ax.axvline(t, color="grey", alpha=0.25, lw=0.8)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("turn")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)


def plot_panels(panels: list[tuple[str, dict[str, dict], str]], path: Path, turns: Sequence[int], title: str) -> Path:
    """One panel per (title, {model label: by_turn}, key): adherence (0-1) against the turn, a line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.3), squeeze=False, sharey=True)
    for ax, (name, curves, key) in zip(axes[0], panels, strict=True):
        _panel(ax, curves, key, name, turns)
    axes[0][0].set_ylabel("adherence")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def plot_adherence(results: dict[str, dict], path: Path, turns: Sequence[int], title: str) -> Path:
    """One evaluation group: a panel for "all" and one per kind, a line per model."""
    keys = ["all", *result_kinds(results)]
    curves = {label: res["by_turn"] for label, res in results.items()}
    segs = n_segments(next(iter(results.values()))["by_turn"])
    return plot_panels([(k, curves, k) for k in keys], path, turns, f"{title}; dialogues per turn: {segs}")


def plot_groups(results: dict[str, dict], path: Path, turns: Sequence[int]) -> Path:
    """The stage's evaluation: a panel per group (suite x placement), overall adherence, a line per model."""
    names = list(dict.fromkeys(n for res in results.values() for n in res["groups"]))
    panels = [(f"{n.split('/')[0].replace('_', '-')}\n{PLACED[n.split('/')[1]]}",
               {label: res["groups"][n]["by_turn"] for label, res in results.items() if n in res["groups"]}, "all")
              for n in names]
    return plot_panels(panels, path, turns, "GAtt adherence by turn (instruction given once)")


def eval_markdown(results: dict[str, dict], turns: Sequence[int], png_name: str) -> str:
    """One group's evaluation section (`chatalign eval gatt`): settings, table, PNG, which checkers are
    heuristics."""
    first = next(iter(results.values()))
    window = first.get("max_prompt_tokens")
    windowed = {label: r["generation"].get("prompts_windowed", 0) for label, r in results.items()}
    places = " or ".join(dict.fromkeys(f"**{r['placement'].replace('_', ' ')}**" for r in results.values()))
    lines = [f"Instruction only in the {places} message; greedy answers of at "
             f"most {first['max_new_tokens']} new tokens; the model's own answers stay in the context.", ""]
    if window and any(windowed.values()):
        lines += [f"Prompt window: {window} tokens; rounds after the first were left out of "
                  f"{', '.join(f'{n} prompts ({label})' for label, n in windowed.items())}. With a window the "
                  "instruction is never far back, so late-turn adherence is an upper bound.", ""]
    lines += ["Adherence (per kind: share of dialogues with that constraint; count in brackets):", "",
              format_table(results, turns), f"![adherence]({png_name})", "", heuristic_note(), ""]
    return "\n".join(lines)


def write_eval_files(results: dict[str, dict], target: Path, turns: Sequence[int], title: str,
                     prefix: str = "eval_gatt") -> dict[str, Path]:
    """`<prefix>.json` (everything), `<prefix>.md` (the section) and `<prefix>.png` in `target`."""
    target.mkdir(parents=True, exist_ok=True)
    png = plot_adherence(results, target / f"{prefix}.png", turns, title)
    js = target / f"{prefix}.json"
    write_text_atomic(js, json.dumps({"turns": list(turns), "results": results}, indent=1))
    md = target / f"{prefix}.md"
    write_text_atomic(md, eval_markdown(results, turns, png.name))
    return {"json": js, "markdown": md, "png": png}


def _table(rows: list[dict]) -> str:
    return markdown_table(rows, list(dict.fromkeys(k for r in rows for k in r))) if rows else ""


def _cell(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def summary_rows(results: dict[str, dict]) -> list[dict]:
    """Per group and kind (overall first): mean adherence over turns 4..last and at the last turn, per model."""
    names = list(dict.fromkeys(n for res in results.values() for n in res["groups"]))
    rows = []
    for name in names:
        groups = {label: res["groups"][name] for label, res in results.items() if name in res["groups"]}
        first = next(iter(groups.values()))
        for key in first["summary"]:
            s = first["summary"][key]
            row = {"suite": name.split("/")[0].replace("_", "-"), "placement": name.split("/")[1],
                   "kind": key, "n": s["n_last"]}
            for label, g in groups.items():
                gs = g["summary"].get(key, {})
                row[f"{label}: t{s['first']}-{s['last_turn']}"] = _cell(gs.get("mean_from"))
                row[f"{label}: t{s['last_turn']}"] = _cell(gs.get("last"))
            rows.append(row)
    return rows


def by_turn_rows(results: dict[str, dict], name: str) -> list[dict]:
    """Overall adherence of one group at every turn, a column per model."""
    groups = {label: res["groups"][name] for label, res in results.items() if name in res["groups"]}
    turns = sorted({int(t) for g in groups.values() for t in g["by_turn"]})
    rows = []
    for t in turns:
        row: dict = {"turn": t, "n": next(iter(groups.values()))["by_turn"].get(str(t), {}).get("n", 0)}
        for label, g in groups.items():
            cell = g["by_turn"].get(str(t))
            row[label] = _cell(cell["all"]) if cell else "-"
        rows.append(row)
    return rows


def synthesis_markdown(cfg, synth: dict) -> list[str]:
    s, r = synth["synthesis"], synth["rows"]
    repaired = synth.get("repaired", {})
    lines = ["## Synthesis", "",
             f"{s['dialogues']} dialogues, {s['turns_answered']} answers kept from {s['candidates_sampled']} sampled "
             f"(instruction in every user turn, {cfg.synthesis.candidates_per_turn} candidate(s) per turn); "
             f"{s['turns_passing']} kept answers pass every constraint, {s.get('turns_repaired', 0)} of them after a "
             f"repair; {s['ended_early']} dialogues ended at an empty answer.", "",
             f"Training rows: {r['rows']} ({r.get('rows_repaired', 0)} with a repaired answer; per placement: "
             + ", ".join(f"{PLACED.get(k, k)} {v}" for k, v in r.get("rows_per_placement", {}).items())
             + f"; loss on the last answer only); rejected by the checkers: {r['rejected']}, cut after a failure: "
             f"{r['cut_after_failure']}, below min_turn: {r['below_min_turn']}.", "",
             "Share of kept answers keeping each kind during synthesis (repaired ones included) and how many a "
             "repair made pass:", "",
             markdown_table([{"": "kept", **synth["pass_rates"]}, {"": "repaired", **{k: repaired.get(k, 0)
                             for k in synth["pass_rates"]}}], ["", *synth["pass_rates"]]), "",
             "Rows per kind: " + ", ".join(f"{k} {v}" for k, v in r.get("rows_per_kind", {}).items()), ""]
    if "cpu_seconds" in synth:
        lines += [f"Synthesis took {synth['cpu_seconds']} CPU-seconds.", ""]
    return lines


def adherence_markdown(results: dict[str, dict], png_name: str) -> list[str]:
    first = next(iter(results.values()))
    lines = ["## Adherence", "",
             f"Greedy answers of at most {first['max_new_tokens']} new tokens, the instruction given once (as the "
             "system message, or in the first user message), the model's own answers in the context. Summary: "
             "the mean of the per-turn adherence over turns 4 to the last, and the adherence at the last turn "
             "(n: dialogues there).", "", _table(summary_rows(results)), "", f"![adherence]({png_name})",
             ""]
    names = list(dict.fromkeys(n for res in results.values() for n in res["groups"]))
    for name in names:
        suite, placement = name.split("/")
        lines += [f"### {SUITES.get(suite, suite)}: {PLACED.get(placement, placement)}", "",
                  _table(by_turn_rows(results, name)), ""]
    cpu = [f"{label} {res['cpu_seconds']}" for label, res in results.items() if "cpu_seconds" in res]
    lines += [heuristic_note(), "", "Evaluation CPU-seconds: " + ", ".join(cpu) + ".", ""]
    return lines


def write_report(run_path: Path, cfg, summary: dict, synth: dict | None, results: dict[str, dict]) -> Path:
    lines = [f"# GAtt run `{run_path.name}`", "",
             f"Starting model: `{cfg.model.name}`; fine-tuned model: `train/model` (also `model/`).", ""]
    if synth:
        lines += synthesis_markdown(cfg, synth)
    if "train" in summary:
        t = summary["train"]
        lines += ["## Training", "", f"{t.get('steps')} steps over {t.get('packed_rows')} packed rows, final loss "
                  f"{t.get('final_loss')}; see `train/report.md`.", ""]
    if results:
        turns = sorted({cfg.independent.gatt.max_turn, *cfg.eval.turns})
        plot_groups(results, run_path / "adherence.png", turns)
        lines += adherence_markdown(results, "adherence.png")
    lines += independent_markdown(run_path)
    path = run_path / "report.md"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def independent_markdown(run_path: Path) -> list[str]:
    """independent.json's rows (the core suites' and GAtt's): base, before, after, and where after < base."""
    from chatalign.evaluation.record import read_independent
    from chatalign.evaluation.table import figure

    record = read_independent(run_path)
    if record is None:
        return []
    rows = [{"suite": r.suite, "metric": r.metric, "base": figure(r.independent.base, r.unit),
             "before": figure(r.independent.before, r.unit), "after": figure(r.independent.after, r.unit),
             "n": r.independent.n, "in-distribution after": figure(r.in_distribution.after, r.unit)
             if r.in_distribution else "-", "": "worse than base" if r.regression() else ""} for r in record.rows]
    return ["## Independent evaluation (independent.json)", "",
            "The untouched base model, the starting model and the GAtt model on data/independent (never trained "
            "on); the in-distribution figure of the GAtt model beside it where there is one.", "", _table(rows), ""]
