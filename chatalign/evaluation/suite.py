"""What a suite is, and how its figures for several models become the rows of independent.json.

A suite reads its data files, answers or scores them with one model, and returns a result (JSON, cached):
    {"suite": "general", "metrics": [metric(...), ...], "samples": [...], "agreement": [...], "seconds": {...}}
Each metric carries its own description (name, direction, unit, judge), so a suite whose metrics depend on the
data (one per instruction kind) needs no list of them elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from chatalign.evaluation.record import Agreement, Figures, IndependentRow

LABELS = ("base", "before", "after")


class Suite(Protocol):
    name: str

    def data_files(self, cfg) -> list[Path]:
        """The files the suite reads (their content is part of the cache key)."""

    def settings(self, cfg) -> dict:
        """The settings that change its figures (part of the cache key)."""

    def run(self, model, tokenizer, cfg, progress: bool) -> dict:
        """The result on one model: {"metrics": [...], "samples": [...], optional "agreement": [...]}."""


def metric(key: str, name: str, value: float | None, n: int, *, higher_is_better: bool, unit: str, judge: str,
           note: str | None = None) -> dict[str, Any]:
    """One figure of a suite's result, described for the report."""
    return {"key": key, "metric": name, "value": value, "n": n, "higher_is_better": higher_is_better, "unit": unit,
            "judge": judge, "note": note}


def share(flags: list[bool]) -> float | None:
    """The share of True in `flags`; None for no flags (no data is not 0%)."""
    return sum(flags) / len(flags) if flags else None


def rows_from_results(suite: str, results: dict[str, dict | None],
                      in_distribution: dict[str, Figures] | None = None) -> list[IndependentRow]:
    """One row per metric key of `suite` over the labelled results ({"base": result, "before": ..., "after": ...};
    a missing label is a model not measured); `in_distribution` adds that figure to the rows it names."""
    described: dict[str, dict] = {}
    values: dict[str, dict[str, float | None]] = {}
    counts: dict[str, int] = {}
    for label in LABELS:
        result = results.get(label)
        for m in (result or {}).get("metrics", []):
            described.setdefault(m["key"], m)
            values.setdefault(m["key"], {})[label] = m["value"]
            if label == "after" or m["key"] not in counts:
                counts[m["key"]] = m["n"]
    rows = []
    for key, m in described.items():
        rows.append(IndependentRow(
            suite=suite, metric=m["metric"], key=key, higher_is_better=m["higher_is_better"], unit=m["unit"],
            independent=Figures(**values[key], n=counts[key]), judge=m["judge"], note=m.get("note"),
            in_distribution=(in_distribution or {}).get(key)))
    return rows


def agreement_from_results(results: dict[str, dict | None]) -> list[Agreement]:
    """Agreement lines of the results, counts pooled over the distinct models that have them (a model that is both
    base and before counts once)."""
    pooled: dict[str, list[int]] = {}
    seen: set[str] = set()
    for label in LABELS:
        result = results.get(label) or {}
        if result.get("fingerprint") in seen:
            continue
        seen.add(result.get("fingerprint"))
        for a in result.get("agreement", []):
            agree, n = pooled.setdefault(a["what"], [0, 0])
            pooled[a["what"]] = [agree + a["agreed"], n + a["n"]]
    return [Agreement(what=what, agree=agree / n, n=n) for what, (agree, n) in pooled.items() if n]
