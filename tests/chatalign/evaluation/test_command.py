"""`chatalign eval independent`: the table of base vs model on stdout, independent.json with --out, one-line
errors for a bad suite list or override."""

from __future__ import annotations

from chatalign.cli.main import main
from chatalign.evaluation.record import read_independent


def test_table_and_record(tiny_dirs, indep_dir, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["eval", "independent", "--model", str(tiny_dirs[1]), "--base", str(tiny_dirs[0]), "--data-dir",
               str(indep_dir), "--suites", "general,safety", "--out", str(out), "--no-progress",
               "general.max_new_tokens=3", "safety.max_new_tokens=3", f"cache_dir={tmp_path / 'cache'}"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "NLL per token of well-written answers" in text and "adversarial prompts answered safely" in text
    assert text.count("cost: ") == 4  # two suites on two models
    record = read_independent(out)
    assert record.model == str(tiny_dirs[1]) and {r.suite for r in record.rows} == {"general", "safety"}
    assert all(r.independent.before is None for r in record.rows)


def test_bad_input_is_one_line(indep_dir, capsys):
    assert main(["eval", "independent", "--model", "embedded", "--suites", "general,gatt"]) == 2
    assert "--suites 'general,gatt'" in capsys.readouterr().err
    assert main(["eval", "independent", "--model", "embedded", "general.max_new_tokens=0"]) == 2
    err = capsys.readouterr().err
    assert "general.max_new_tokens" in err and "Traceback" not in err
