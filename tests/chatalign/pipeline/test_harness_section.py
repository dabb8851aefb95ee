"""The report's Standard-benchmarks section from the steps' harness.json: base beside each step, regressions
marked, absent when nobody ran the harness, a broken file named."""

from __future__ import annotations

from chatalign.harness.record import join_rows, write_harness
from chatalign.pipeline.harness_section import TITLE, harness_section
from chatalign.pipeline.report import to_markdown
from chatalign.pipeline.report_sections import Ctx, StepInfo


def step(tmp_path, name, stage, finished=True):
    d = tmp_path / name
    d.mkdir()
    return StepInfo(name, stage, d, "k", True, {"stage": stage, "status": "finished" if finished else "running"})


def rows(model, base=0.60, se=0.05):
    def one(v):
        return {"task": "mc", "metric": "acc", "filter": "none", "value": v, "stderr": se, "n": 40,
                "higher_is_better": True}
    return join_rows([one(model)], [one(base)])


def test_a_column_per_step_beside_the_base(tmp_path):
    sft, rlhf, unfinished = step(tmp_path, "sft", "sft"), step(tmp_path, "rlhf_round1", "rlhf"), \
        step(tmp_path, "gatt", "gatt", finished=False)
    write_harness(sft.dir, {"model": "m", "base_model": "embedded", "rows": rows(0.55)})
    write_harness(rlhf.dir, {"model": "m", "base_model": "embedded", "rows": rows(0.40)})
    write_harness(unfinished.dir, {"model": "m", "base_model": "embedded", "rows": rows(0.1)})
    blocks = harness_section(Ctx(root=tmp_path, steps=[sft, rlhf, unfinished]))
    (table,) = [b for b in blocks if b[0] == "table"]
    assert table[1] == ["task", "metric", "base", "sft", "rlhf_round1", "n"]
    line = table[2][0]
    assert line["base"] == "0.6000 ± 0.0500" and line["sft"] == "0.5500 ± 0.0500"
    assert line["rlhf_round1"] == "0.4000 ± 0.0500 ▼ below base" and line["n"] == "40"
    assert f"## {TITLE}" in to_markdown(blocks)


def test_nothing_when_no_step_ran_the_harness_and_a_broken_file_is_named(tmp_path):
    sft = step(tmp_path, "sft", "sft")
    assert harness_section(Ctx(root=tmp_path, steps=[sft])) == []
    (sft.dir / "harness.json").write_text("{not json")
    text = to_markdown(harness_section(Ctx(root=tmp_path, steps=[sft])))
    assert "step `sft`:" in text and "harness.json: not readable as JSON" in text
