"""The reward models' part of the pipeline report: held-out accuracy per preference strength (Llama 2
Table 8), read from each reward step's eval.json."""

from __future__ import annotations

from chatalign.pipeline.report_sections import Ctx, StepInfo, not_run, pct
from chatalign.plots import plot_bars


def rm_kind(s: StepInfo) -> str:
    return s.config.get("kind") or ("safety" if "safety" in s.name else "helpfulness")


def section(ctx: Ctx) -> list:
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
