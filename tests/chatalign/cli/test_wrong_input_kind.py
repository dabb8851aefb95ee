"""A file or recipe meant for something else is named for what it is, in one line (not one line per row or key)."""

from pathlib import Path

from chatalign.cli.main import main

ROOT = Path(__file__).resolve().parents[3]
QS = ROOT / "data" / "quickstart"


def test_validate_with_the_wrong_kind_says_which_kind_the_file_is(capsys):
    assert main(["data", "validate", str(QS / "sft_train.jsonl"), "--kind", "preference"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "every row is valid conversation data (--kind conversation)" in err[0], err[:3]
    assert main(["data", "validate", str(QS / "pref_helpful_train.jsonl"), "--kind", "conversation"]) == 2
    assert "(--kind preference)" in capsys.readouterr().err


def test_validate_of_a_broken_file_still_lists_its_problems(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n{"nonsense": 1}\n')
    assert main(["data", "validate", str(bad), "--kind", "conversation"]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl:2" in err and "--kind" not in err


def test_a_recipe_for_another_stage_is_one_line_naming_its_stage(capsys):
    recipe = ROOT / "recipes" / "quickstart" / "reward_helpful.yaml"
    assert main(["sft", "--config", str(recipe), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "recipe for the reward stage" in err[0] and "`chatalign reward`" in err[0], err
