"""Plain-text tables of independent-evaluation rows, for the terminal and the logs."""

from __future__ import annotations

from chatalign.evaluation.record import PERCENT, IndependentRow


def figure(value: float | None, unit: str) -> str:
    """A value as the report shows it: shares as percentages, other units with 3 decimals."""
    if value is None:
        return "-"
    return f"{100 * value:.1f}%" if unit == PERCENT else f"{value:.3f}"


def format_rows(rows: list[IndependentRow], labels: tuple[str, ...] = ("base", "before", "after")) -> str:
    """One line per row: metric, the labelled figures, n, and `worse than base` where the model regressed."""
    head = ["suite", "metric", *labels, "n", ""]
    lines = [head]
    for r in rows:
        values = r.independent.values()
        flag = "worse than base" if "after" in labels and r.regression() else ""
        lines.append([r.suite, r.metric, *(figure(values[label], r.unit) for label in labels),
                      str(r.independent.n), flag])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)
