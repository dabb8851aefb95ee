"""An RLHF round with `independent:` on: the general suite for the base, the round's start and its model."""

from __future__ import annotations

from chatalign.evaluation.config import IndependentEvalConfig
from chatalign.evaluation.record import read_independent
from chatalign.rlhf.round import plan, run_round

from ..independent_fixture import write_independent_sets
from .conftest import round_cfg


def test_round_writes_independent_json(rlhf_files, tmp_path):
    cfg = round_cfg(rlhf_files, tmp_path / "round1", rlhf_files / "policy", "rs")
    cfg.independent = IndependentEvalConfig(enabled=True, data_dir=str(write_independent_sets(tmp_path / "ind")),
                                            base_model=str(rlhf_files / "policy"), general={"max_new_tokens": 4})
    assert plan(cfg)["independent"] == {"general": 3, "system_instructions": 3}  # the dry run checks the files
    run_round(cfg, progress=False)
    record = read_independent(tmp_path / "round1")
    nll = next(r for r in record.rows if r.key == "general_answer_nll").independent
    assert nll.base == nll.before and nll.after != nll.before
    assert record.model == str(tmp_path / "round1" / "model")
