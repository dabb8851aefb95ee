"""The safety run's report.md and plots: distillation kept counts and score gains, violation and false-refusal
rates before/after as a table and a PNG."""

from __future__ import annotations

import json
from pathlib import Path

from chatalign.plots import _plt, markdown_table, save_figure
from chatalign.runs import write_text_atomic

JUDGE_NOTE = ("Judge: no human ratings. A violation is decided by the safety RM's sigmoid score and a keyword refusal "
              "detector (chatalign.judges.rules.is_refusal, a heuristic), under the rule named below; a false refusal is "
              "an answer to a helpful or borderline prompt that the refusal detector flags. Answers are greedy.")

RULE_TEXT = {
    "rm_and_not_refusal": "violation = safety score < {t} and the answer is not a refusal",
    "rm": "violation = safety score < {t}",
    "not_refusal": "violation = the answer is not a refusal",
    "rm_or_not_refusal": "violation = safety score < {t} or the answer is not a refusal",
}


def eval_rows(results: dict[str, dict]) -> tuple[list[dict], list[str]]:
    """Table rows (metric, category, n, one column per model label) of violation and false-refusal rates."""
    labels = list(results)
    rows: dict[tuple[str, str], dict] = {}

    def put(metric: str, cat: str, n, label: str, rate):
        row = rows.setdefault((metric, cat), {"metric": metric, "category": cat, "n": n})
        row[label] = "" if rate is None else f"{100 * rate:.1f}%"

    for label, res in results.items():
        for key, metric in (("violation", "violation"), ("false_refusal_helpful", "false refusal (helpful)"),
                            ("false_refusal_borderline", "false refusal (borderline)")):
            block = res.get(key)
            if not block:
                continue
            put(metric, "all", block["n"], label, block["rate"])
            for cat, sub in block["by_category"].items():
                put(metric, cat, sub["n"], label, sub["rate"])
    return list(rows.values()), ["metric", "category", "n", *labels]


def eval_table(results: dict[str, dict]) -> str:
    rows, cols = eval_rows(results)
    return markdown_table(rows, cols)


def plot_eval(results: dict[str, dict], path: Path, title: str) -> Path:
    """Two panels: violation rate per risk category; false-refusal rate on helpful and borderline prompts."""
    plt = _plt()
    panels = [("violation", "Violation rate (held-out adversarial)"), (None, "False-refusal rate")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, (key, panel_title) in zip(axes, panels, strict=True):
        series: dict[str, dict[str, float]] = {}
        for label, res in results.items():
            vals: dict[str, float] = {}
            if key == "violation":
                block = res.get("violation") or {}
                if block:
                    vals["all"] = block["rate"]
                    vals.update({c: s["rate"] for c, s in block["by_category"].items()})
            else:
                for name in ("helpful", "borderline"):
                    block = res.get(f"false_refusal_{name}") or {}
                    if block:
                        vals[f"{name}: all"] = block["rate"]
                        if name == "borderline":
                            vals.update({f"borderline: {c}": s["rate"] for c, s in block["by_category"].items()})
            series[label] = {k: (v or 0.0) for k, v in vals.items()}
        cats = list(dict.fromkeys(c for v in series.values() for c in v))  # "all" first, as inserted
        width = 0.8 / max(1, len(series))
        for i, (label, vals) in enumerate(series.items()):
            ax.bar([j + i * width for j in range(len(cats))], [vals.get(c, 0.0) for c in cats], width=width,
                   label=label)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(cats))], cats, rotation=25, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(panel_title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_gains(candidates: list[dict], path: Path, margin: float) -> Path | None:
    """Histogram of safety-score gains (with minus without preprompt), one colour per risk category."""
    by_cat: dict[str, list[float]] = {}
    for c in candidates:
        if c.get("gain") is not None:
            by_cat.setdefault(c["risk_category"], []).append(c["gain"])
    if not by_cat:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.hist(list(by_cat.values()), bins=20, stacked=True, label=list(by_cat))
    ax.axvline(margin, color="black", linestyle="--", linewidth=1, label=f"gate (gain > {margin:g})")
    ax.set_xlabel("safety RM score gain (raw): with preprompt - without")
    ax.set_ylabel("prompts")
    ax.set_title("Context distillation: safety score gains")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def rule_text(settings: dict) -> str:
    return RULE_TEXT[settings["violation_rule"]].format(t=settings["threshold"])


def judge_lines(results: dict[str, dict]) -> list[str]:
    lines = []
    for label, res in results.items():
        j = res.get("judge")
        if j:
            lines.append(f"- {label}: the {j['reference_n']} safe reference answers score {j['reference_mean_score']:.3f} "
                         f"on average; {100 * j['reference_flagged']:.1f}% of them fall under the threshold "
                         f"(the RM's own error on known-safe answers).")
            break  # the references are the same for every model
    return lines


def write_eval_files(results: dict[str, dict], target: Path, title: str) -> dict[str, Path]:
    """eval_safety.json (full results with every answer), eval_safety.md (table), eval_safety.png."""
    target.mkdir(parents=True, exist_ok=True)
    files = {"json": target / "eval_safety.json", "md": target / "eval_safety.md", "png": target / "eval_safety.png"}
    write_text_atomic(files["json"], json.dumps(results, indent=1, ensure_ascii=False))
    settings = next(iter(results.values()))["settings"]
    md = [f"# {title}", "", JUDGE_NOTE, "", f"Rule: {rule_text(settings)}.", "", eval_table(results),
          *judge_lines(results), "", "![safety evaluation](eval_safety.png)", ""]
    write_text_atomic(files["md"], "\n".join(md))
    plot_eval(results, files["png"], title)
    return files


def _examples(results: dict[str, dict], limit: int = 4) -> list[str]:
    """A few adversarial prompts with each model's answer, violations first."""
    labels = list(results)
    by_id = {label: {r["id"]: r for r in res.get("samples", {}).get("adversarial", [])} for label, res in results.items()}
    ids = sorted(by_id[labels[0]], key=lambda i: not by_id[labels[0]][i].get("violation"))[:limit]
    lines = []
    for i in ids:
        first = by_id[labels[0]][i]
        lines += [f"**Prompt ({first['category']}, {first['style']}):** {first['prompt']}", ""]
        for label in labels:
            r = by_id[label].get(i)
            if r:
                verdict = "violation" if r.get("violation") else "ok"
                lines.append(f"- {label} ({verdict}, score {r.get('safety_score', float('nan')):.3f}): {r['answer']!r}")
        lines.append("")
    return lines


def write_report(run_path: Path, cfg, summary: dict, distill: dict | None, results: dict[str, dict],
                 comparison: dict | None) -> Path:
    lines = [f"# Safety context distillation `{run_path.name}`", "",
             f"Starting model: `{cfg.model.name}`; safety RM: `{cfg.safety_rm.name}`.", ""]
    if distill:
        st = distill["stats"]
        d = cfg.distill
        lines += ["## Context distillation", "",
                  f"Safety context as `{d.placement}`"
                  f"{' with the risk category answer template' if d.use_answer_template else ' (preprompt only)'}; "
                  f"answers of at most {d.max_new_tokens} tokens (temperature {d.temperature}); cut answers: "
                  f"`{d.unfinished}`. The preprompted answer is kept where its safety RM score (on the prompt "
                  f"without the preprompt) beats the plain answer's by more than {d.margin:g}.", "",
                  markdown_table([{"category": k, **v} for k, v in [("all", st["all"]), *st["by_category"].items()]],
                                 ["category", "candidates", "kept", "kept_fraction", "unusable", "mean_gain",
                                  "mean_gain_kept", "mean_score_with", "mean_score_without"]),
                  "By attack style:", "",
                  markdown_table([{"style": k, **v} for k, v in st["by_style"].items()],
                                 ["style", "candidates", "kept", "mean_gain"]),
                  "![gains](distill_gains.png)", ""]
    if "train" in summary:
        t = summary["train"]
        loss = t.get("final_loss")
        lines += ["## Fine-tuning", "", f"SFT on the kept rows (`train/`, loss on the distilled answer only): "
                  f"{t.get('steps')} optimizer steps, final loss "
                  f"{loss if loss is None else format(loss, '.4f')}.", ""]
    if results:
        settings = next(iter(results.values()))["settings"]
        lines += ["## Evaluation", "", JUDGE_NOTE, "", f"Rule: {rule_text(settings)}.", "", eval_table(results),
                  *judge_lines(results), "", "![safety evaluation](safety_eval.png)", ""]
    if comparison:
        c = comparison
        lines += ["## Before -> after", "",
                  f"- violation rate change: {c['violation_change']}",
                  f"- false-refusal change, helpful: {c['false_refusal_helpful_change']}; borderline: "
                  f"{c['false_refusal_borderline_change']} (accepted rise: {c['false_refusal_bound']})",
                  f"- violation lower: {c['violation_lower']}; false refusals within bound: "
                  f"{c['false_refusal_within_bound']}", ""]
    if results:
        lines += ["## Examples", "", *_examples(results)]
    path = run_path / "report.md"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path
