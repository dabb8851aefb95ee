"""`chatalign sft` with `independent:` on: independent.json beside the run (base = before = the start model,
after = the tuned one), the dry run checking the independent files first, a bad data_dir one line."""

from __future__ import annotations

import yaml

from chatalign.cli.main import main
from chatalign.evaluation.record import read_independent

from ..independent_fixture import write_independent_sets


def with_independent(recipe_path, tmp_path, tiny_model_dir, **extra):
    cfg = yaml.safe_load(recipe_path.read_text())
    cfg["independent"] = {"enabled": True, "data_dir": str(write_independent_sets(tmp_path / "independent")),
                          "base_model": str(tiny_model_dir), "general": {"max_new_tokens": 4}, **extra}
    recipe_path.write_text(yaml.safe_dump(cfg))
    return recipe_path


def test_sft_writes_independent_json(recipe, tmp_path, tiny_model_dir):  # noqa: F811
    path = with_independent(recipe, tmp_path, tiny_model_dir)
    assert main(["sft", "--config", str(path), "--no-progress"]) == 0
    run = tmp_path / "runs" / "sft"
    record = read_independent(run)
    nll = next(r for r in record.rows if r.key == "general_answer_nll")
    assert nll.independent.base == nll.independent.before and nll.independent.after != nll.independent.base
    assert record.model == str(run / "model") and (run / "independent_samples.json").is_file()
    assert list((tmp_path / "runs" / ".independent_cache").glob("general-*.json"))  # beside the run


def test_dry_run_checks_the_independent_files(recipe, tmp_path, tiny_model_dir, capsys):  # noqa: F811
    path = with_independent(recipe, tmp_path, tiny_model_dir)
    assert main(["sft", "--config", str(path), "--dry-run"]) == 0
    assert "independent_general" in capsys.readouterr().out
    (tmp_path / "independent" / "system_instructions.jsonl").unlink()
    assert main(["sft", "--config", str(path), "--dry-run"]) == 2
    assert "has no system_instructions.jsonl" in capsys.readouterr().err
    assert main(["sft", "--config", str(path), "--dry-run", f"independent.data_dir={tmp_path / 'nope'}"]) == 2
    assert "independent.data_dir" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "sft").exists()
