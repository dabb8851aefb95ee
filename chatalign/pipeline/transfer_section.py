"""The report's "Transfer: independent evaluation" section, built from the `independent.json` of every finished
step (chatalign.evaluation.record): one table per suite, a column for the untouched base model and one per
step's model in pipeline order, the in-distribution figure beside the independent one where a step has both,
and every figure worse than the base model's marked. Then the agreement of the pipeline's judges with the
independent ones, and what each suite cost.
"""

from __future__ import annotations

from chatalign.errors import DataError
from chatalign.evaluation.record import IndependentRecord, IndependentRow, read_independent
from chatalign.evaluation.table import figure
from chatalign.pipeline.report_sections import Ctx, StepInfo

TITLE = "Transfer: independent evaluation"
BELOW_BASE = "▼ below base"
WITHIN_NOISE = "▽ below base, within 2 SE"
HOW_MADE = ("The independent sets (`data/independent/`, see its README.md for how each file was made) were "
            "written by a separate author, in other styles and with other vocabulary than the quickstart "
            "generator, and are never used for training, data selection or early stopping. **base** is the "
            "untouched base model; each other column is a step's model. A figure in brackets is the same measure "
            f"on the step's in-distribution held-out data. `{BELOW_BASE}`: worse than the base model on the "
            f"independent set (an alignment tax); `{WITHIN_NOISE}`: a share below the base model's by at most two "
            "standard errors of the difference (sqrt(p(1-p)/n + q(1-q)/n)): the same measure on new draws or a "
            "new run may well come out the other way.")


def _records(ctx: Ctx) -> tuple[list[tuple[StepInfo, IndependentRecord]], list[str]]:
    found, problems = [], []
    for step in ctx.steps:
        if not (step.enabled and step.finished):
            continue
        try:
            record = read_independent(step.dir)
        except DataError as exc:
            problems.append(f"step `{step.name}`: {exc}")
            continue
        if record is not None:
            found.append((step, record))
    return found, problems


def _cell(row: IndependentRow) -> str:
    text = figure(row.independent.after, row.unit)
    if row.in_distribution is not None and row.in_distribution.after is not None:
        text += f" ({figure(row.in_distribution.after, row.unit)})"
    mark = _mark(row)
    return f"{text} {mark}" if mark else text


def _mark(row: IndependentRow) -> str:
    """'' where the step's model is not below the base model, else which of the two marks."""
    if not row.regression():
        return ""
    return WITHIN_NOISE if row.regression_within_noise() else BELOW_BASE


def _base_cell(rows: list[IndependentRow]) -> str:
    """The base model's figure; where steps measured it with other settings, each value."""
    values = list(dict.fromkeys(figure(r.independent.base, r.unit) for r in rows if r.independent.base is not None))
    base = " / ".join(values) if values else "-"
    in_dist = [r.in_distribution.base for r in rows if r.in_distribution and r.in_distribution.base is not None]
    return base + (f" ({figure(in_dist[0], rows[0].unit)})" if in_dist else "")


def suite_table(suite: str, found: list[tuple[StepInfo, IndependentRecord]]) -> list:
    """The table of one suite: metric | base | one column per step that has the suite | n."""
    steps = [(step, {r.key: r for r in record.rows if r.suite == suite}) for step, record in found]
    steps = [(step, rows) for step, rows in steps if rows]
    keys = list(dict.fromkeys(k for _, rows in steps for k in rows))
    columns = ["metric", "base", *(step.name for step, _ in steps), "n", "judge"]
    table = []
    for key in keys:
        present = [rows[key] for _, rows in steps if key in rows]
        first = present[0]
        line = {"metric": first.metric + (" (lower is better)" if not first.higher_is_better else ""),
                "base": _base_cell(present), "n": str(first.independent.n), "judge": first.judge}
        for step, rows in steps:
            line[step.name] = _cell(rows[key]) if key in rows else "-"
        table.append(line)
    return [("h", 3, f"Suite: {suite}"), ("table", columns, table)] + _notes_list(steps)


def _notes_list(steps: list[tuple[StepInfo, dict[str, IndependentRow]]]) -> list:
    """The rows' notes, each once per step: rows of a step that share a note are named together before it."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for step, rows in steps:
        for row in rows.values():
            if row.note:
                grouped.setdefault((step.name, row.note), []).append(row.metric)
    notes = [(0, f"`{name}` {'; '.join(metrics)}: {note}") for (name, note), metrics in grouped.items()]
    return [("list", notes)] if notes else []


def _costs(found: list[tuple[StepInfo, IndependentRecord]]) -> list:
    from chatalign.evaluation.stage_hook import SAMPLES_FILE

    rows = []
    for step, _ in found:
        data = step.json(SAMPLES_FILE) or {}
        for c in data.get("seconds", []):
            rows.append({"step": step.name, "suite": c.get("suite"), "model": f"`{c.get('model')}`",
                         "CPU s": c.get("cpu"), "wall s": c.get("wall")})
    if not rows:
        return []
    return [("p", "What each suite took on each model it evaluated (a model already evaluated with the same "
                  "settings and data is read from the cache, and costs nothing again):"),
            ("table", ["step", "suite", "model", "CPU s", "wall s"], rows)]


def _regressions_line(found: list[tuple[StepInfo, IndependentRecord]]) -> str:
    marked = [(f"`{step.name}` {r.metric}", _mark(r)) for step, record in found for r in record.rows]
    beyond = [what for what, mark in marked if mark == BELOW_BASE]
    within = [what for what, mark in marked if mark == WITHIN_NOISE]
    if not beyond and not within:
        return "No step is below the base model on any independent figure."
    parts = [f"{len(beyond)} figure(s) below the base model" + (": " + "; ".join(beyond) if beyond else "")]
    if within:
        parts.append(f"{len(within)} more below it within two standard errors: " + "; ".join(within))
    return ". ".join(parts) + "."


def transfer_section(ctx: Ctx) -> list:
    blocks: list = [("h", 2, TITLE)]
    found, problems = _records(ctx)
    if not found:
        why = "no finished step wrote independent.json (set `independent.enabled: true` in the stage recipes)"
        return blocks + [("p", f"No independent evaluation: {why}.")] + [("p", p) for p in problems]
    blocks.append(("p", HOW_MADE))
    for suite in dict.fromkeys(s for _, record in found for s in record.suites()):
        blocks += suite_table(suite, found)
    blocks.append(("p", _regressions_line(found)))
    agreement = [(0, f"`{step.name}`: {a.what}: {100 * a.agree:.1f}% agree (n={a.n})")
                 for step, record in found for a in record.agreement]
    if agreement:
        blocks += [("p", "Agreement between the pipeline's own judges and the independent ones:"),
                   ("list", agreement)]
    blocks += _costs(found)
    return blocks + [("p", p) for p in problems]

