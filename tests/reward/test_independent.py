"""A reward model's independent evaluation: its pair accuracy on the independent files beside the length and
bag-of-words baselines, the in-distribution held-out figures beside those, per strength for its own kind."""

from __future__ import annotations

import json

import pytest

from chatalign.evaluation.record import read_independent
from chatalign.reward.run import run_reward

from ..independent_fixture import write_independent_sets
from .conftest import toy_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory, toy_files, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("rm_independent")
    train, held = toy_files
    cfg = toy_config(tmp, train, held, model=tiny_model_dir, max_steps=4)
    cfg.independent = cfg.independent.model_validate(
        {"enabled": True, "data_dir": str(write_independent_sets(tmp / "independent"))})
    summary = run_reward(cfg, progress=False)
    return tmp / "run", summary


def test_rows_for_both_files_with_baselines(trained):
    run, _ = trained
    record = read_independent(run)
    rows = {r.key: r for r in record.rows}
    for name in ("helpful", "safety"):
        for key in (f"rm_accuracy_{name}", f"length_baseline_{name}", f"bow_baseline_{name}"):
            assert rows[key].suite == "preferences" and rows[key].independent.n == 8, key
            assert rows[key].independent.base is None and rows[key].independent.after is not None
    # the toy RM is a safety RM: its own file carries the held-out figures and the per-strength rows
    assert rows["rm_accuracy_helpful"].in_distribution is None
    held = rows["rm_accuracy_safety"].in_distribution
    evaluation = json.loads((run / "eval.json").read_text())
    assert held is not None and held.n == 10 and held.after == evaluation["overall"]["accuracy"]
    assert {k for k in rows if k.startswith("rm_accuracy_safety_")} == {
        "rm_accuracy_safety_significantly_better", "rm_accuracy_safety_better", "rm_accuracy_safety_slightly_better",
        "rm_accuracy_safety_negligibly_better"}
    # the toy pairs differ by love/hate: a bag of words learns that shortcut perfectly in distribution, and it
    # says nothing on the independent pairs (great/useful vs poor/useless, words it never saw): chance
    bow = rows["bow_baseline_safety"]
    assert bow.in_distribution.after == 1.0 and bow.independent.after == 0.5
    assert rows["length_baseline_safety"].independent.after == 0.5  # equal lengths: every pair a tie


def test_files_option_scores_only_the_named_independent_file(trained, tmp_path):
    from chatalign.reward.independent import check_independent

    run, _ = trained
    cfg = json.loads((run / "manifest.json").read_text())["config"]
    from chatalign.reward.config import RewardConfig

    full = RewardConfig.model_validate(cfg)
    assert check_independent(full) == {"helpful": 8, "safety": 8}
    cfg["independent"]["preferences"]["files"] = ["safety"]
    assert check_independent(RewardConfig.model_validate(cfg)) == {"safety": 8}
    cfg["independent"]["preferences"]["files"] = ["harmless"]
    with pytest.raises(ValueError, match="files"):
        RewardConfig.model_validate(cfg)
