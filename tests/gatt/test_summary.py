"""The GAtt rows of independent.json from hand-made evaluation results."""

from chatalign.gatt.summary import AFTER, BEFORE, independent_rows


def _group(turn1: float, kept: int, retained: float | None) -> dict:
    by_turn = {"1": {"n": 4, "all": turn1, "lowercase": turn1, "n_lowercase": 4},
               "4": {"n": 4, "all": 0.25, "lowercase": 0.25, "n_lowercase": 4}}
    summary = {key: {"mean_from": 0.25, "last": 0.25, "last_turn": 4, "n_last": 4, "first": 4}
               for key in ("all", "lowercase")}
    return {"suite": "independent", "placement": "system", "by_turn": by_turn, "summary": summary,
            "retention": {"kept_at_1": kept, "mean_from": retained, "last_turn": 4 if kept else None}}


def test_turn_1_and_retention_rows_show_capability_apart_from_keeping():
    results = {BEFORE: {"groups": {"independent/system": _group(0.5, 2, 0.0)}},
               AFTER: {"groups": {"independent/system": _group(0.75, 3, 1 / 3)}}}
    rows = {r.key: r for r in independent_rows(results, ["system"], base_is_start=False)}
    t1, kept = rows["gatt_system_t1"].independent, rows["gatt_system_retained"].independent
    assert (t1.base, t1.before, t1.after, t1.n) == (None, 0.5, 0.75, 4)
    assert (kept.before, kept.after, kept.n) == (0.0, 1 / 3, 4)
    assert rows["gatt_system_retained"].note.startswith(
        "n: dialogues; of them kept at turn 1: before 2 (to turn 4), after 3 (to turn 4);")
    assert rows["gatt_system_retained"].metric.endswith("kept from turn 4 on when kept at turn 1")
    assert list(rows) == ["gatt_system_t4_4", "gatt_system_t4", "gatt_system_t1", "gatt_system_retained",
                          "gatt_system_lowercase_t4_4"]


def test_results_written_before_retention_existed_give_no_such_rows():
    old = _group(0.5, 2, 0.0)
    del old["retention"]
    rows = independent_rows({BEFORE: {"groups": {"independent/system": old}}}, ["system"], base_is_start=True)
    assert [r.key for r in rows] == ["gatt_system_t4_4", "gatt_system_t4", "gatt_system_lowercase_t4_4"]
    assert rows[0].independent.base == rows[0].independent.before == 0.25  # the start is the base model
