"""The report's Transfer section from the steps' independent.json files: base column, one column per step in
pipeline order, in-distribution figures in brackets, regressions marked, agreement and costs; its absence said."""

from __future__ import annotations

import json

from chatalign.evaluation.record import Figures, IndependentRow, write_independent
from chatalign.pipeline.report import to_html, to_markdown
from chatalign.pipeline.report_sections import Ctx, StepInfo
from chatalign.pipeline.transfer_section import BELOW_BASE, WITHIN_NOISE, transfer_section


def step(tmp_path, name, stage, finished=True, enabled=True):
    d = tmp_path / name
    d.mkdir()
    manifest = {"stage": stage, "status": "finished" if finished else "running"}
    return StepInfo(name, stage, d, "k", enabled, manifest)


def nll(after, base=2.5, in_dist=None):
    return IndependentRow(suite="general", metric="NLL of good answers", key="nll", higher_is_better=False,
                          unit="nats", independent=Figures(base=base, before=base, after=after, n=80), judge="nll",
                          in_distribution=Figures(after=in_dist, n=40) if in_dist is not None else None)


def kept(after):
    return IndependentRow(suite="general", metric="instructions kept", key="kept", higher_is_better=True, unit="%",
                          independent=Figures(base=0.4, after=after, n=60), judge="rules")


def safe(after):
    return IndependentRow(suite="safety", metric="answered safely", key="safe", higher_is_better=True, unit="%",
                          independent=Figures(base=0.2, before=0.2, after=after, n=80), judge="safety-judge")


def md(blocks):
    return to_markdown(blocks)


def test_tables_per_suite_with_regressions_marked(tmp_path):
    sft, rlhf, skipped, safety = (step(tmp_path, "sft", "sft"), step(tmp_path, "rlhf_round1", "rlhf"),
                                  step(tmp_path, "gatt", "gatt", finished=False), step(tmp_path, "safety", "safety"))
    write_independent(sft.dir, [nll(2.4, in_dist=1.9), kept(0.5)], [], "m", "embedded")
    write_independent(rlhf.dir, [nll(2.7), kept(0.3)], [], "m", "sft")
    write_independent(skipped.dir, [nll(9.9)], [], "m", "x")  # unfinished: not shown
    write_independent(safety.dir, [safe(0.45), nll(2.45)], [{"what": "safety RM vs rule judge", "agree": 0.8,
                                                            "n": 80}], "m", "gatt")
    (safety.dir / "independent_samples.json").write_text(json.dumps(
        {"seconds": [{"suite": "safety", "model": "embedded", "cpu": 80.5, "wall": 41.0}]}))
    blocks = transfer_section(Ctx(root=tmp_path, steps=[sft, rlhf, skipped, safety]))
    tables = [b for b in blocks if b[0] == "table"]
    general = tables[0]
    assert general[1] == ["metric", "base", "sft", "rlhf_round1", "safety", "n", "judge"]
    first = general[2][0]
    assert first["metric"] == "NLL of good answers (lower is better)" and first["base"] == "2.500"
    assert first["sft"] == "2.400 (1.900)" and first["rlhf_round1"] == f"2.700 {BELOW_BASE}"
    # 30% vs the base's 40% on 60 prompts: 1.15 standard errors of the difference (0.0866)
    assert general[2][1]["rlhf_round1"] == f"30.0% {WITHIN_NOISE}" and general[2][1]["safety"] == "-"
    assert tables[1][1] == ["metric", "base", "safety", "n", "judge"] and tables[1][2][0]["safety"] == "45.0%"
    text = md(blocks)
    assert "## Transfer: independent evaluation" in text and "9.900" not in text
    assert "1 figure(s) below the base model: `rlhf_round1` NLL of good answers." in text
    assert "1 more below it within two standard errors: `rlhf_round1` instructions kept." in text
    assert "`safety`: safety RM vs rule judge: 80.0% agree (n=80)" in text
    assert "| safety | safety | `embedded` | 80.5 | 41 |" in text
    assert "data/independent/" in text
    assert "<table>" in to_html(blocks, tmp_path)


def test_a_share_below_base_by_more_than_two_standard_errors_is_a_regression(tmp_path):
    sft = step(tmp_path, "sft", "sft")
    write_independent(sft.dir, [kept(0.1)], [], "m", "embedded")  # 10% vs 40% of 60: 4.0 SE (0.0742)
    blocks = transfer_section(Ctx(root=tmp_path, steps=[sft]))
    assert [b for b in blocks if b[0] == "table"][0][2][0]["sft"] == f"10.0% {BELOW_BASE}"
    assert "1 figure(s) below the base model: `sft` instructions kept." in md(blocks)
    assert "within two standard errors" not in md(blocks)


def test_absent_and_broken_records_are_said(tmp_path):
    sft = step(tmp_path, "sft", "sft")
    text = md(transfer_section(Ctx(root=tmp_path, steps=[sft])))
    assert "No independent evaluation: no finished step wrote independent.json" in text
    (sft.dir / "independent.json").write_text("{broken")
    text = md(transfer_section(Ctx(root=tmp_path, steps=[sft])))
    assert "step `sft`:" in text and "not readable JSON" in text


def test_no_regression_sentence(tmp_path):
    sft = step(tmp_path, "sft", "sft")
    write_independent(sft.dir, [nll(2.4)], [], "m", "embedded")
    assert "No step is below the base model" in md(transfer_section(Ctx(root=tmp_path, steps=[sft])))


def test_a_rows_note_is_listed_under_its_suites_table(tmp_path):
    gatt = step(tmp_path, "gatt", "gatt")
    noted = kept(0.5).model_copy(update={"note": "kept at turn 1: 1 -> 3 dialogues; they run to turn 6"})
    write_independent(gatt.dir, [noted, nll(2.4)], [], "m", "rlhf_round1")
    blocks = transfer_section(Ctx(root=tmp_path, steps=[gatt]))
    suite = blocks.index(("h", 3, "Suite: general"))
    assert blocks[suite + 1][0] == "table"
    assert blocks[suite + 2] == ("list", [(0, "`gatt` instructions kept: kept at turn 1: 1 -> 3 dialogues; they "
                                             "run to turn 6")])
    assert "- `gatt` instructions kept: kept at turn 1" in md(blocks)


def test_rows_sharing_a_note_are_named_together_once(tmp_path):
    gatt = step(tmp_path, "gatt", "gatt")
    shared = "held-out kinds; in-distribution: the training kinds"
    first = kept(0.5).model_copy(update={"note": shared})
    second = kept(0.3).model_copy(update={"key": "kept_t20", "metric": "kept at turn 20", "note": shared})
    third = nll(2.4).model_copy(update={"note": "another note"})
    write_independent(gatt.dir, [first, second, third], [], "m", "rlhf_round1")
    blocks = transfer_section(Ctx(root=tmp_path, steps=[gatt]))
    suite = blocks.index(("h", 3, "Suite: general"))
    assert blocks[suite + 2] == ("list", [(0, f"`gatt` instructions kept; kept at turn 20: {shared}"),
                                          (0, "`gatt` NLL of good answers: another note")])
