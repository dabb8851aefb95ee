"""GAtt's part of the pipeline report: instruction adherence before and after (and the base model's), on the
training kinds and on held-out kinds, per placement, read from eval_base / eval_before / eval_after.json."""

from __future__ import annotations

from chatalign.pipeline.report_sections import Ctx, not_run


def section(ctx: Ctx) -> list:
    from chatalign.gatt.report import plot_groups, summary_rows
    from chatalign.gatt.summary import AFTER, BASE, BEFORE

    blocks: list = [("h", 2, "Ghost Attention: instruction adherence per turn")]
    done = ctx.done("gatt")
    if not done:
        return blocks + not_run(ctx, "gatt", "adherence")
    s = done[-1]
    files = ((BASE, "eval_base.json"), (BEFORE, "eval_before.json"), (AFTER, "eval_after.json"))
    results = {label: s.json(f) for label, f in files}
    results = {k: v for k, v in results.items() if v and v.get("groups")}
    if not results:
        return blocks + [("p", f"`{s.name}` ran without an adherence evaluation.")]
    rows = summary_rows(results)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    turns = sorted({int(t) for r in results.values() for g in r["groups"].values() for t in g["by_turn"]})
    path = plot_groups(results, ctx.root / "report_gatt.png", [t for t in (4, turns[-1]) if t <= turns[-1]])
    blocks += [("p", f"Step `{s.name}`: the instruction is given once, as the system message or in the first user "
                     "message; share of dialogues whose answer keeps it (rule checkers, greedy answers), as the "
                     "mean over turns 4 to the last and at the last turn. in-distribution: the kinds GAtt trains "
                     "on, on the bundled held-out dialogues; independent: instruction kinds never trained "
                     "(data/independent). Per-turn tables: the step's report.md."),
               ("table", columns, rows), ("img", path.name, "GAtt adherence")]
    return blocks
