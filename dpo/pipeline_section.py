"""The DPO section of the pipeline report, read from the files of the finished DPO steps' run directories."""

from __future__ import annotations


def dpo_section(ctx) -> list:
    from chatalign.pipeline.report_sections import not_run, num, pct
    from chatalign.plots import plot_curves

    blocks: list = [("h", 2, "DPO: implicit-reward accuracy per preference strength")]
    done = ctx.done("dpo")
    if not done:
        return blocks + not_run(ctx, "dpo", "DPO model")
    rows, columns = [], []
    for s in done:
        m, ev = s.metrics, s.json("eval.json") or {}
        line = (ev.get("table8") or {}).get("all") or {}
        columns = columns or list(line)
        rows.append({"step": s.name, "beta": num(m.get("beta")), "train steps": m.get("steps"),
                     "final loss": num(m.get("final_loss")), "held-out pairs": m.get("eval_pairs", "-"),
                     **{c: pct(line.get(c)) for c in line}})
        png = plot_curves(s.records(), ["loss", "accuracy", "reward_margin"], ctx.root / f"report_{s.name}.png",
                          f"DPO training ({s.name})")
        if png:
            blocks.append(("img", png.name, f"DPO training {s.name}"))
    blocks += [("p", "Held-out pairs where the chosen answer's implicit reward beta * (log pi - log pi_ref) is "
                     "higher than the rejected one's, by annotated strength (as the reward models' Table 8)."),
               ("table", ["step", "beta", "train steps", "final loss", "held-out pairs", *columns], rows)]
    return blocks
