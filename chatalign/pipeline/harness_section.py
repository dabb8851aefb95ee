"""The report's "Standard benchmarks" section: the `harness.json` that `chatalign eval harness STEP_DIR` wrote into
finished steps (chatalign.harness.record), one column per step beside the untouched base model's score."""

from __future__ import annotations

from chatalign.errors import DataError
from chatalign.harness.record import read_harness, regression, score_text
from chatalign.pipeline.report_sections import Ctx

TITLE = "Standard benchmarks (lm-evaluation-harness)"
HOW = ("Scores of `chatalign eval harness STEP_DIR --tasks ...` (mean ± standard error); **base** is the untouched "
       "base model. `▼ below base`: worse than the base model by more than two standard errors of the difference.")


def harness_section(ctx: Ctx) -> list:
    found, problems = [], []
    for step in ctx.steps:
        if step.enabled and step.finished:
            try:
                record = read_harness(step.dir)
            except DataError as exc:
                problems.append(f"step `{step.name}`: {exc}")
                continue
            if record is not None:
                found.append((step, {(r["task"], r["metric"], r["filter"]): r for r in record["rows"]}))
    if not found and not problems:
        return []  # nobody ran the harness: the report says nothing rather than an empty section
    blocks: list = [("h", 2, TITLE), ("p", HOW)]
    keys = list(dict.fromkeys(k for _, rows in found for k in rows))
    columns = ["task", "metric", "base", *(step.name for step, _ in found), "n"]
    table = []
    for key in keys:
        present = [rows[key] for _, rows in found if key in rows]
        line = {"task": key[0], "metric": key[1] + ("" if key[2] == "none" else f" ({key[2]})"),
                "base": score_text(present[0]["base"], present[0]["base_stderr"]), "n": str(present[0]["n"])}
        for step, rows in found:
            r = rows.get(key)
            line[step.name] = "-" if r is None else (score_text(r["model"], r["model_stderr"])
                                                     + (" ▼ below base" if regression(r) else ""))
        table.append(line)
    if table:
        blocks.append(("table", columns, table))
    return blocks + [("p", p) for p in problems]
