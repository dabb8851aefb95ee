"""`harness.json`: a model's lm-eval scores beside the base model's, written into the run directory that was
evaluated so the pipeline report can show them (chatalign.pipeline.harness_section). Layout (version 1):

    {"version": 1, "model": "runs/x/safety", "base_model": "embedded", "lm_eval_version": "0.4.13",
     "settings": {"tasks": ["chatalign_everyday_mc"], "limit": null, "num_fewshot": null, "seed": 0},
     "rows": [{"task": "chatalign_everyday_mc", "metric": "acc", "filter": "none", "base": 0.55,
               "base_stderr": 0.08, "model": 0.5, "model_stderr": 0.08, "n": 40, "higher_is_better": true}]}
"""

from __future__ import annotations

import json
from pathlib import Path

from chatalign.errors import DataError
from chatalign.runs import write_json_atomic

FILE_NAME = "harness.json"
VERSION = 1


def join_rows(model_rows: list[dict], base_rows: list[dict] | None) -> list[dict]:
    """One row per (task, metric, filter) of the model, with the base model's score where it has one."""
    base = {(r["task"], r["metric"], r["filter"]): r for r in base_rows or []}
    out = []
    for r in model_rows:
        b = base.get((r["task"], r["metric"], r["filter"])) or {}
        out.append({"task": r["task"], "metric": r["metric"], "filter": r["filter"], "base": b.get("value"),
                    "base_stderr": b.get("stderr"), "model": r["value"], "model_stderr": r["stderr"], "n": r["n"],
                    "higher_is_better": r["higher_is_better"]})
    return out


def regression(row: dict) -> bool:
    """Below the base model by more than two standard errors of the difference (an alignment tax)."""
    if row.get("base") is None or row.get("higher_is_better") is None:
        return False
    se = ((row.get("base_stderr") or 0.0) ** 2 + (row.get("model_stderr") or 0.0) ** 2) ** 0.5
    diff = row["model"] - row["base"]
    worse = -diff if row["higher_is_better"] else diff
    return worse > 2 * se


def write_harness(folder: str | Path, record: dict) -> Path:
    path = Path(folder) / FILE_NAME
    write_json_atomic(path, {"version": VERSION, **record})
    return path


def read_harness(folder: str | Path) -> dict | None:
    path = Path(folder) / FILE_NAME
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not readable as JSON ({exc})") from None
    if not isinstance(record, dict) or record.get("version") != VERSION or not isinstance(record.get("rows"), list):
        raise DataError(f"{path}: not a version-{VERSION} harness record (rows missing or another version)")
    return record


def score_text(value, stderr) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" + (f" ± {stderr:.4f}" if stderr is not None else "")


def table_lines(rows: list[dict]) -> list[str]:
    """A markdown table: task | metric | base | model | n, a regression marked."""
    lines = ["| task | metric | base | model | n |", "|---|---|---|---|---|"]
    for r in rows:
        mark = " ▼ below base" if regression(r) else ""
        metric = r["metric"] + ("" if r["filter"] == "none" else f" ({r['filter']})")
        lines.append(f"| {r['task']} | {metric} | {score_text(r['base'], r['base_stderr'])} | "
                     f"{score_text(r['model'], r['model_stderr'])}{mark} | {r['n'] if r['n'] is not None else '-'} |")
    return lines
