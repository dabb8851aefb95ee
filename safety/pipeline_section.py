"""Safety's part of the pipeline report: violation and false-refusal rates before and after, read from its
eval_before.json / eval_after.json; and what its step offers the example dialogues (an adversarial
prompt, its answers)."""

from __future__ import annotations

from chatalign.pipeline.examples import ExampleSource, answers_in
from chatalign.pipeline.report_sections import Ctx, StepInfo, before_after, pct
from chatalign.plots import plot_bars

SAFETY_RATES = (("violation", "violation rate (adversarial)"),
                ("false_refusal_helpful", "false refusals (helpful)"),
                ("false_refusal_borderline", "false refusals (borderline)"))


def section(ctx: Ctx) -> list:
    blocks, s, results = before_after(ctx, "safety", "Safety context distillation: violations and false refusals",
                                      "safety rates", ("before", "after"), "without evaluation files: no rates")
    if not results:
        return blocks
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


def example_source(step: StepInfo) -> ExampleSource:
    ev = step.config.get("eval") or {}
    return ExampleSource(extra_prompts=ev.get("adversarial"), extra_kind="an adversarial one",
                         max_new_tokens=ev.get("max_new_tokens"), answers=answers_in(step, "eval_after.json"))
