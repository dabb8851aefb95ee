"""GAtt's part of the pipeline report: instruction adherence per turn before and after, read from its
eval_before.json / eval_after.json."""

from __future__ import annotations

from chatalign.pipeline.report_sections import Ctx, before_after, pct
from chatalign.plots import _plt


def section(ctx: Ctx) -> list:
    blocks, s, results = before_after(ctx, "gatt", "Ghost Attention: instruction adherence per turn", "adherence",
                                      ("before GAtt", "after GAtt"),
                                      "without held-out dialogues (no `eval.data`): no adherence",
                                      usable=lambda r: bool(r.get("by_turn")))
    if not results:
        return blocks
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
