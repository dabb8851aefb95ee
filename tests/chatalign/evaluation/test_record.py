"""independent.json: written and read back, validated on both sides, regressions flagged as the report shows."""

import json

import pytest

from chatalign.errors import DataError
from chatalign.evaluation.record import (
    FILE_NAME,
    Agreement,
    Figures,
    IndependentRow,
    read_independent,
    share_difference_se,
    snake_key,
    write_independent,
)


def nll_row(after: float = 2.6) -> IndependentRow:
    return IndependentRow(suite="general", metric="NLL per token of well-written answers", key="general_nll",
                          higher_is_better=False, unit="nats",
                          independent=Figures(base=2.49, before=2.49, after=after, n=80), judge="nll")


def rate_row() -> dict:
    return {"suite": "general", "metric": "system instructions kept", "key": "system_kept",
            "higher_is_better": True, "unit": "%", "independent": {"base": 0.3, "before": 0.3, "after": 0.45, "n": 60},
            "in_distribution": {"base": None, "before": 0.2, "after": 0.7, "n": 40}, "judge": "rules"}


def test_round_trip(tmp_path):
    path = write_independent(tmp_path, [nll_row(), rate_row()],
                             [Agreement(what="safety RM vs rule judge", agree=0.75, n=8)], tmp_path / "model", "embedded")
    assert path == tmp_path / FILE_NAME
    raw = json.loads(path.read_text())
    assert raw["version"] == 1 and raw["start_model"] == "embedded"
    assert raw["rows"][1]["in_distribution"] == {"base": None, "before": 0.2, "after": 0.7, "n": 40}
    rec = read_independent(tmp_path)
    assert [r.key for r in rec.rows] == ["general_nll", "system_kept"]
    assert rec.agreement[0].agree == 0.75 and rec.suites() == ["general"]
    assert not list(tmp_path.glob(f".{FILE_NAME}-*"))  # the atomic write left no temp file


def test_regression_follows_the_metric_direction():
    assert nll_row(after=2.6).regression()  # higher NLL is worse
    assert not nll_row(after=2.4).regression()
    up = IndependentRow.model_validate(rate_row())
    assert not up.regression()
    down = IndependentRow.model_validate({**rate_row(), "independent": {"base": 0.6, "after": 0.1, "n": 60}})
    assert down.regression()
    unmeasured = IndependentRow.model_validate({**rate_row(), "independent": {"base": None, "after": 0.1, "n": 60}})
    assert not unmeasured.regression()


def test_share_difference_se_by_hand():
    assert share_difference_se(0.5, 0.5, 100) == pytest.approx(0.070711, abs=1e-6)  # sqrt(0.5 / 100)
    assert share_difference_se(0.3, 0.4, 60) == pytest.approx(0.086603, abs=1e-6)  # sqrt(0.45 / 60)
    assert share_difference_se(0.0, 1.0, 12) == 0.0


def test_a_share_regression_within_two_standard_errors_is_noise():
    def share(after, base, n):
        return IndependentRow.model_validate({**rate_row(), "independent": {"base": base, "after": after, "n": n}})
    assert share(0.0, 1 / 6, 12).regression_within_noise()  # 2 of 12 -> 0 of 12: 1.55 SE
    assert not share(0.0, 0.5, 12).regression_within_noise()  # 6 of 12 -> 0: 3.46 SE
    assert not share(0.5, 0.4, 60).regression_within_noise()  # better than base: no regression at all
    assert not nll_row(after=9.0).regression_within_noise() and not nll_row(after=2.6).regression_within_noise()


@pytest.mark.parametrize("change, field", [
    ({"unit": "%", "independent": {"base": 45.0, "after": 0.5, "n": 3}}, "unit '%'"),
    ({"key": "Bad Key"}, "key"),
    ({"independent": {"base": float("nan"), "n": 3}}, "finite"),
    ({"independent": {"base": 0.1, "n": -1}}, "n"),
    ({"colour": "red"}, "colour"),
])
def test_bad_rows_are_refused_on_write(tmp_path, change, field):
    with pytest.raises(ValueError, match=field):
        write_independent(tmp_path, [{**rate_row(), **change}], [], "m", "s")
    assert not (tmp_path / FILE_NAME).exists()


def test_duplicate_keys_and_bad_agreement_are_refused(tmp_path):
    with pytest.raises(ValueError, match="twice"):
        write_independent(tmp_path, [rate_row(), rate_row()], [], "m", "s")
    with pytest.raises(ValueError, match="agree"):
        write_independent(tmp_path, [rate_row()], [{"what": "x", "agree": 1.5, "n": 3}], "m", "s")


def test_read_absent_and_broken_files(tmp_path):
    assert read_independent(tmp_path) is None
    (tmp_path / FILE_NAME).write_text("{not json")
    with pytest.raises(DataError, match="not readable JSON"):
        read_independent(tmp_path)
    (tmp_path / FILE_NAME).write_text(json.dumps({"version": 2, "model": "m", "start_model": "s", "rows": []}))
    with pytest.raises(DataError, match=r"independent.json: version"):
        read_independent(tmp_path)


def test_snake_key():
    assert snake_key("Turn 4-20 adherence") == "turn_4_20_adherence"
    assert snake_key("20 turns") == "k_20_turns"
