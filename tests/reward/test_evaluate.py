"""Accuracy tables from scored pairs (hand-counted), and `chatalign eval reward` on a saved RM."""

import json

import pytest

from chatalign.reward.eval_report import format_tables
from chatalign.reward.evaluate import accuracy_report, source_level


def row(file, strength, chosen, rejected, bin_="unlabelled", source=None):
    return {"file": file, "source": source or file, "strength": strength, "safety_bin": bin_,
            "chosen": chosen, "rejected": rejected}


def test_accuracy_tables_hand_counted():
    rows = [row("a", "significantly_better", 2.0, 0.0, "chosen_safe_rejected_unsafe"),
            row("a", "significantly_better", 1.0, 0.5, "chosen_safe_rejected_unsafe"),
            row("a", "better", 0.0, 1.0, "both_safe"),
            row("a", "negligibly_better", 0.3, 0.3, "both_safe"),  # a tie is not a win
            row("b", "unsure", 1.0, 0.0, "both_unsafe"),
            row("b", "none", -1.0, 0.0)]
    rep = accuracy_report(rows)
    assert rep["overall"] == {"accuracy": 0.5, "pairs": 6, "mean_gap": pytest.approx((2 + 0.5 - 1 + 0 + 1 - 1) / 6)}
    assert rep["per_strength"]["significantly_better"] == {"accuracy": 1.0, "pairs": 2}
    assert rep["per_strength"]["better"]["accuracy"] == 0.0
    assert list(rep["per_strength"]) == ["significantly_better", "better", "negligibly_better", "unsure", "none"]
    assert rep["table8"]["a"] == {"significantly_better": 1.0, "better": 0.0, "slightly_better": None,
                                  "negligibly_better/unsure": 0.0, "avg": 0.5}
    assert rep["table8"]["b"]["negligibly_better/unsure"] == 1.0 and rep["table8"]["b"]["avg"] == 0.5
    assert rep["table8"]["all"]["negligibly_better/unsure"] == 0.5
    assert rep["per_safety_bin"]["both_safe"] == {"accuracy": 0.0, "pairs": 2}
    assert rep["per_safety_bin"]["chosen_safe_rejected_unsafe"]["accuracy"] == 1.0
    assert rep["per_file"] == {"a": {"accuracy": 0.5, "pairs": 4}, "b": {"accuracy": 0.5, "pairs": 2}}
    text = format_tables(rep)
    assert "| a | 100.0 | 0.0 | - | 0.0 | 50.0 |" in text and "Per safety bin" in text


def test_no_safety_table_without_labels():
    assert "per_safety_bin" not in accuracy_report([row("a", "better", 1.0, 0.0)])


def test_source_level_groups_deep_sources():
    sources = [f"qs:safety:{b}:{c}:{s}" for b in ("x", "y") for c in ("c1", "c2", "c3") for s in "abcdefg"]
    assert source_level(sources, 12) == 4  # 2 x 3 = 6 groups; one level deeper would be 42
    assert source_level(sources, 100) == 5
    assert source_level(["plain"], 12) == 1


def test_cmd_eval_prints_and_writes_into_the_run(tmp_path, capsys, toy_files, tiny_model_dir):
    from chatalign.reward.cli_commands import cmd_eval
    from chatalign.reward.run import run_reward

    from .conftest import toy_config

    train, held = toy_files
    cfg = toy_config(tmp_path, train, held, model=tiny_model_dir, max_steps=1)
    cfg.data.eval = []
    run_reward(cfg, progress=False)
    run = tmp_path / "run"
    assert "Held-out" not in (run / "report.md").read_text()
    capsys.readouterr()
    assert cmd_eval(str(run), [str(held)]) == 0
    out = capsys.readouterr().out
    assert "Accuracy (%) per preference strength" in out and "| toy_heldout |" in out
    ev = json.loads((run / "eval_toy_heldout.json").read_text())
    assert ev["overall"]["pairs"] == 10 and ev["excluded_chosen_unsafe_rejected_safe"] == {"toy_heldout": 0}
    assert (run / "eval_toy_heldout_accuracy.png").stat().st_size > 0
    report = (run / "report.md").read_text()
    assert "## Evaluation on toy_heldout.jsonl" in report
    assert cmd_eval(str(run), [str(held)]) == 0  # again: the section is replaced, not repeated
    assert (run / "report.md").read_text().count("## Evaluation on toy_heldout.jsonl") == 1
    # a plain HF directory with out_dir
    assert cmd_eval(str(run / "model"), [str(held)], out_dir=str(tmp_path / "ev")) == 0
    assert (tmp_path / "ev" / "eval_toy_heldout.md").is_file()


def test_eval_refuses_a_causal_lm(tiny_model_dir, toy_files):
    from chatalign.errors import UserError
    from chatalign.reward.evaluate import evaluate_reward_model

    with pytest.raises(UserError, match="not a reward model"):
        evaluate_reward_model(tiny_model_dir, [str(toy_files[1])])


def test_test_set_names_stay_apart():
    from chatalign.reward.evaluate import unique_names

    assert unique_names(["a/x.jsonl", "b/x.jsonl", "y.json", "c/x.parquet"]) == ["x", "x#2", "y", "x#3"]
