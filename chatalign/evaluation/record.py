"""`independent.json`: what a stage's run directory says about its model on the independent evaluation sets.

Every stage that evaluates on data/independent/ writes one file with `write_independent`; the pipeline report's
"Transfer" section reads them with `read_independent` (the core names no stage). Layout (version 1):

    {"version": 1, "model": "<the run's model dir>", "start_model": "<the model the stage started from>",
     "rows": [{"suite": "general", "metric": "NLL per token of well-written answers", "key": "general_nll",
               "higher_is_better": false, "unit": "nats",
               "independent": {"base": 2.49, "before": 2.49, "after": 2.61, "n": 80},
               "in_distribution": {"base": null, "before": 1.9, "after": 1.7, "n": 40} | null,
               "judge": "nll", "note": "optional"}],
     "agreement": [{"what": "safety RM vs rule judge on adversarial answers", "agree": 0.8, "n": 80}]}

"base" is the untouched base model (the pipeline's first model, `embedded` by default), "before" the model this
stage started from, "after" this stage's model; a figure not measured is null. Units: "%" means a share in
[0, 1] (shown as a percentage: writing 45.0 for 45% is an error here, not a silent 4500%); any other unit
("nats", "tokens", ...) is shown as is. `judge` says who decided: "rules" (chatalign.judges.rules), "nll",
"rm" (a reward model of the pipeline), "llm:<model>", "safety-judge" (chatalign.judges.safety), or a
baseline's name ("length", "bag-of-words").
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chatalign.errors import DataError

FILE_NAME = "independent.json"
VERSION = 1
PERCENT = "%"
KEY_PATTERN = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class Figures(_Strict):
    """One metric for the three models; None where a model was not measured."""

    base: float | None = None
    before: float | None = None
    after: float | None = None
    n: int = Field(..., ge=0, description="items the figures are measured on (prompts, pairs, answers)")

    @field_validator("base", "before", "after")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number or null")
        return v

    def values(self) -> dict[str, float | None]:
        return {"base": self.base, "before": self.before, "after": self.after}


class IndependentRow(_Strict):
    suite: str = Field(..., min_length=1, description="general | preferences | gatt | safety | ...")
    metric: str = Field(..., min_length=1, description="human-readable name of what is measured")
    key: str = Field(..., pattern=KEY_PATTERN, description="snake_case id, unique within its suite")
    higher_is_better: bool
    unit: str = Field(..., min_length=1)
    independent: Figures
    in_distribution: Figures | None = None
    judge: str = Field(..., min_length=1)
    note: str | None = None

    @model_validator(mode="after")
    def _shares_in_range(self):
        if self.unit != PERCENT:
            return self
        for where, figures in (("independent", self.independent), ("in_distribution", self.in_distribution)):
            for name, v in (figures.values() if figures else {}).items():
                if v is not None and not 0.0 <= v <= 1.0:
                    raise ValueError(f"{where}.{name}={v}: unit '%' takes a share in [0, 1] (0.45 for 45%)")
        return self

    def worse(self, value: float | None, than: float | None) -> bool:
        """Whether `value` is strictly worse than `than` for this metric (False when either is missing)."""
        if value is None or than is None:
            return False
        return value < than if self.higher_is_better else value > than

    def regression(self) -> bool:
        """The stage's model is worse than the untouched base model on the independent set (alignment tax)."""
        return self.worse(self.independent.after, self.independent.base)

    def regression_within_noise(self) -> bool:
        """A regression on a share by at most two standard errors of the difference (a figure in another unit
        carries no error here, and its regression always counts)."""
        if not self.regression() or self.unit != PERCENT:
            return False
        fig = self.independent
        return abs(fig.after - fig.base) <= 2 * share_difference_se(fig.after, fig.base, fig.n)


def share_difference_se(a: float, b: float, n: int) -> float:
    """SE of a - b for two shares of n items each, as independent binomial samples: sqrt(a(1-a)/n + b(1-b)/n)."""
    # the same items answered by two models agree more often than chance, so this overstates the paired error
    return math.sqrt((a * (1 - a) + b * (1 - b)) / n) if n > 0 else math.inf


class Agreement(_Strict):
    what: str = Field(..., min_length=1, description="which two judges, on which answers")
    agree: float = Field(..., ge=0.0, le=1.0, description="share of items on which the two verdicts agree")
    n: int = Field(..., ge=0)


class IndependentRecord(_Strict):
    version: int = VERSION
    model: str
    start_model: str
    rows: list[IndependentRow]
    agreement: list[Agreement] = []

    @field_validator("version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v != VERSION:
            raise ValueError(f"version {v} is not known here (expected {VERSION})")
        return v

    @model_validator(mode="after")
    def _unique_keys(self):
        seen: set[tuple[str, str]] = set()
        for row in self.rows:
            if (row.suite, row.key) in seen:
                raise ValueError(f"rows: key {row.key!r} appears twice in suite {row.suite!r}")
            seen.add((row.suite, row.key))
        return self

    def suites(self) -> list[str]:
        """The suites of the rows, in order of first appearance."""
        return list(dict.fromkeys(r.suite for r in self.rows))


def _problems(exc: ValidationError, source: str) -> str:
    return "; ".join(f"{source}: {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
                     for e in exc.errors(include_url=False))


def build_record(rows, agreement, model: str | os.PathLike, start_model: str | os.PathLike) -> IndependentRecord:
    """The validated record; rows and agreement may be model instances or plain dicts."""
    data = {"version": VERSION, "model": str(model), "start_model": str(start_model),
            "rows": [r.model_dump() if isinstance(r, BaseModel) else r for r in rows],
            "agreement": [a.model_dump() if isinstance(a, BaseModel) else a for a in (agreement or [])]}
    try:
        return IndependentRecord.model_validate(data)
    except ValidationError as exc:
        raise ValueError(_problems(exc, FILE_NAME)) from None


def write_independent(run_dir: str | os.PathLike, rows, agreement, model: str | os.PathLike,
                      start_model: str | os.PathLike) -> Path:
    """Validate and write `<run_dir>/independent.json` atomically; returns its path. A row that breaks the
    schema is a ValueError naming the field (a bug in the stage that wrote it, not the user's data)."""
    from chatalign.runs import write_json_atomic

    record = build_record(rows, agreement, model, start_model)
    path = Path(run_dir) / FILE_NAME
    write_json_atomic(path, record.model_dump(mode="json"))
    return path


def read_independent(run_dir: str | os.PathLike) -> IndependentRecord | None:
    """The record of a run directory, or None when it has no independent.json; a DataError naming the file
    and field when the file is not valid."""
    path = Path(run_dir) / FILE_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not readable JSON: {exc}") from None
    try:
        return IndependentRecord.model_validate(data)
    except ValidationError as exc:
        raise DataError(_problems(exc, str(path))) from None


def snake_key(text: str) -> str:
    """A row key from free text ("Turn 4-20 adherence" -> "turn_4_20_adherence")."""
    key = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return key if key and key[0].isalpha() else f"k_{key}"
