"""harness.json: model and base rows joined, a regression beyond two standard errors, the file round trip."""

from __future__ import annotations

import pytest

from chatalign.errors import DataError
from chatalign.harness.record import join_rows, read_harness, regression, table_lines, write_harness


def row(value, stderr, higher=True, task="t", metric="acc"):
    return {"task": task, "metric": metric, "filter": "none", "value": value, "stderr": stderr, "n": 40,
            "higher_is_better": higher}


def test_join_rows_puts_the_base_score_beside_the_models():
    joined = join_rows([row(0.5, 0.08), row(0.6, 0.07, metric="acc_norm")], [row(0.55, 0.079)])
    assert joined[0] == {"task": "t", "metric": "acc", "filter": "none", "base": 0.55, "base_stderr": 0.079,
                         "model": 0.5, "model_stderr": 0.08, "n": 40, "higher_is_better": True}
    assert joined[1]["base"] is None and joined[1]["model"] == 0.6  # the base had no acc_norm
    assert join_rows([row(0.5, 0.08)], None)[0]["base"] is None


def test_regression_is_beyond_two_standard_errors_of_the_difference():
    # SE of the difference = sqrt(0.05^2 + 0.05^2) = 0.0707; two of them = 0.1414
    worse = join_rows([row(0.40, 0.05)], [row(0.60, 0.05)])[0]  # 0.20 worse
    within = join_rows([row(0.50, 0.05)], [row(0.60, 0.05)])[0]  # 0.10 worse
    better = join_rows([row(0.80, 0.05)], [row(0.60, 0.05)])[0]
    assert regression(worse) and not regression(within) and not regression(better)
    perplexity = join_rows([row(12.0, 0.5, higher=False)], [row(10.0, 0.5, higher=False)])[0]  # 2.0 > 1.41
    assert regression(perplexity)
    assert not regression(join_rows([row(0.1, 0.01)], None)[0])  # no base: nothing to regress from
    assert "▼ below base" in table_lines([worse])[2] and "▼" not in table_lines([within])[2]


def test_write_and_read_back(tmp_path):
    rows = join_rows([row(0.5, 0.08)], [row(0.55, 0.079)])
    path = write_harness(tmp_path, {"model": "m", "base_model": "embedded", "rows": rows})
    assert read_harness(tmp_path)["rows"] == rows and path.name == "harness.json"
    assert read_harness(tmp_path / "none") is None
    path.write_text('{"version": 2, "rows": []}')
    with pytest.raises(DataError, match="harness.json: not a version-1 harness record"):
        read_harness(tmp_path)
