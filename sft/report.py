"""The SFT run's report.md: data statistics, loss curve, held-out comparison with the starting model."""

from __future__ import annotations

import json

from chatalign.plots import markdown_table, plot_bars, plot_curves
from chatalign.runs import write_text_atomic


def _fmt(x) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else "n/a"


def write_report(run, cfg, summary: dict) -> None:
    records = run.read_metrics()
    plot_curves(records, ["loss", "lr", "tok_per_s"], run.path / "loss.png", "SFT training")
    lines = [f"# SFT run `{run.path.name}`", "", f"Model: `{cfg.model.name}`; data: `{cfg.data.train}`.", "",
             "## Data", "", markdown_table([{k[5:]: v for k, v in summary.items() if k.startswith("data_")}],
                                           [k[5:] for k in summary if k.startswith("data_")]),
             "## Training", "", f"{summary['steps']} optimizer steps over {summary['packed_rows']} packed rows; "
             f"final loss {_fmt(summary.get('final_loss'))}.", "", "![loss](loss.png)", ""]
    base_file, final_file = run.path / "eval_base.json", run.path / "eval_final.json"
    if final_file.is_file():
        tuned = json.loads(final_file.read_text())
        base = json.loads(base_file.read_text()) if base_file.is_file() else None
        rows = [{"model": "final", "pass rate": tuned.get("pass_rate"), "reference NLL": tuned.get("reference_nll")}]
        if base:
            rows.insert(0, {"model": "start", "pass rate": base.get("pass_rate"),
                            "reference NLL": base.get("reference_nll")})
        lines += ["## Held-out evaluation", "",
                  "Pass rate: greedy answers checked by each prompt's rule (chatalign.judges.rules); reference NLL: "
                  "mean per-token negative log-likelihood of the held-out reference answers (lower is better).",
                  "", markdown_table(rows, ["model", "pass rate", "reference NLL"])]
        series = {"final": tuned.get("per_task", {})}
        if base:
            series = {"start": base.get("per_task", {}), **series}
        if any(series.values()):
            plot_bars(series, run.path / "eval_per_task.png", "Held-out pass rate per task", "pass rate", (0, 1))
            lines += ["", "![per task](eval_per_task.png)", ""]
        samples = tuned.get("samples", [])[:6]
        base_by_id = {s["id"]: s for s in (base or {}).get("samples", [])}
        if samples:
            lines += ["## Examples", ""]
            for s in samples:
                b = base_by_id.get(s["id"])
                lines += [f"**Prompt:** {s['prompt']}", ""]
                if b:
                    lines += [f"- start ({'pass' if b['pass'] else 'fail'}): {b['answer']!r}"]
                lines += [f"- final ({'pass' if s['pass'] else 'fail'}): {s['answer']!r}", ""]
    write_text_atomic(run.path / "report.md", "\n".join(lines) + "\n")
