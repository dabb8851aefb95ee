"""DPO with `independent:` on: the general suite for the base, the start and the DPO model in independent.json."""

from __future__ import annotations

from chatalign.dpo.stage import STAGE
from chatalign.evaluation.config import IndependentEvalConfig
from chatalign.evaluation.record import read_independent

from ..independent_fixture import write_independent_sets
from .conftest import toy_config


def test_dpo_writes_independent_json(tmp_path, toy_files, tiny_model_dir):
    train, held = toy_files
    cfg = toy_config(tmp_path / "run", train, held, tiny_model_dir, max_steps=2)
    cfg.independent = IndependentEvalConfig(enabled=True, data_dir=str(write_independent_sets(tmp_path / "ind")),
                                            base_model=str(tiny_model_dir), general={"max_new_tokens": 4})
    STAGE.run(cfg, progress=False)
    record = read_independent(tmp_path / "run")
    rows = {r.key: r for r in record.rows}
    assert record.suites() == ["general"] and record.start_model == str(tiny_model_dir)
    nll = rows["general_answer_nll"].independent
    assert nll.base == nll.before and nll.after is not None and nll.after != nll.before
