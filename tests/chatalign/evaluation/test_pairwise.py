"""The LLM judge's win rate against the base model: counted by hand, and run end to end with a tiny local judge
model (a random model: its verdicts cannot be read, and are counted as such, not guessed)."""

from __future__ import annotations

from chatalign.evaluation.config import IndependentEvalConfig
from chatalign.evaluation.pairwise import KEY, win_rate
from chatalign.evaluation.stage_hook import run_independent
from chatalign.judges.llm import PairVerdict


def test_win_rate_by_hand():
    verdicts = [PairVerdict("a", "better", "ok"), PairVerdict("a", None, "ok"), PairVerdict("b", "better", "ok"),
                PairVerdict(None, None, "unsure"), PairVerdict(None, None, "inconsistent"),
                PairVerdict(None, None, "unparseable")]
    value, read, counts = win_rate(verdicts)
    assert read == 4 and value == (2 + 0.5) / 4
    assert counts["inconsistent"] == 1 and counts["unparseable"] == 1
    assert win_rate([PairVerdict(None, None, "unparseable")])[:2] == (None, 0)


def test_llm_judge_row_with_a_local_judge(tiny_dirs, indep_dir, tmp_path):
    cfg = IndependentEvalConfig.model_validate({
        "enabled": True, "data_dir": str(indep_dir), "base_model": str(tiny_dirs[0]), "cache_dir": str(tmp_path),
        "general": {"max_new_tokens": 3}, "suites": ["general"],
        "judge": {"kind": "llm", "llm": {"backend": "hf", "model": str(tiny_dirs[0]), "max_new_tokens": 4}}})
    run_independent(cfg, tmp_path / "run", str(tiny_dirs[1]), str(tiny_dirs[0]), ["general"], progress=False)
    from chatalign.evaluation.record import read_independent

    row = next(r for r in read_independent(tmp_path / "run").rows if r.key == KEY)
    assert row.judge == f"llm:{tiny_dirs[0]}" and row.independent.base == 0.5 == row.independent.before
    assert row.independent.after is None and row.independent.n == 0  # nothing readable from a random model
    assert row.note == "after: {'unparseable': 3}"
