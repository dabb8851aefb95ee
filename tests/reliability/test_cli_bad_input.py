"""Bad data and bad configs at the command line: exit code 2, a clear `chatalign: error:` message naming the
place, no traceback, and no output written (no half-made run directory, no half-written converted file)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chatalign.cli.main import main

from .conftest import ENV, QS, STAGES

BAD_CONV = json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "robot", "content": "a"}]})


def bad_copy(src: Path, dst: Path, bad_lines: dict[int, str], keep: int = 12) -> Path:
    lines = src.read_text().splitlines()[:keep]
    for at, text in sorted(bad_lines.items()):
        lines.insert(at - 1, text)
    dst.write_text("\n".join(lines) + "\n")
    return dst


def error_of(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err


def test_data_validate_exits_2_with_file_line_field(tmp_path, capsys):
    f = bad_copy(QS / "sft_train.jsonl", tmp_path / "train.jsonl", {3: BAD_CONV, 7: '{"messages": [}'})
    assert main(["data", "validate", str(f), "--kind", "conversation"]) == 2
    err = error_of(capsys).splitlines()
    assert err[0] == f"{f}:3: messages.1.role: " + err[0].split("messages.1.role: ")[1]
    assert err[1].startswith(f"{f}:7: invalid JSON") and err[-1] == f"{f}: 2 problem(s)"


def test_data_convert_of_bad_data_writes_nothing(tmp_path, capsys):
    f = bad_copy(QS / "pref_helpful_train.jsonl", tmp_path / "p.jsonl",
                 {2: json.dumps({"prompt": "q", "chosen": "same", "rejected": "same"})})
    dst = tmp_path / "out.jsonl"
    assert main(["data", "convert", str(f), str(dst), "--kind", "preference"]) == 2
    assert f"{f}:2: rejected: " in error_of(capsys)
    assert not dst.exists() and not list(tmp_path.glob(".out*")), "a half-written output was left"


@pytest.mark.parametrize("override, expected", [
    ("train.epochs=abc", "train.epochs"),
    ("optim.lrr=1", "optim.lrr: unknown key"),
    ("train.global_batch_rows=3", "micro_batch_rows"),
    ("data.on_error=skip", "data.quarantine"),
    ("checkpoint.every_steps=0", "checkpoint.every_steps"),
    ("data.train=$HOME/x.jsonl", "data.train: path"),
    ("data.eval=~/held.jsonl", "data.eval: path"),
    ("data.train='{{ secrets }}.jsonl'", "data.train: path"),
])
def test_sft_config_errors_are_one_line_exit_2(recipe_files, tmp_path, capsys, override, expected):
    extra = ["train.micro_batch_rows=2"] if "global_batch_rows" in override else []
    out = tmp_path / "run"
    assert main(["sft", "--config", str(recipe_files["sft"]), "--dry-run", f"output_dir={out}", override,
                 *extra]) == 2
    err = error_of(capsys).strip()
    assert err.startswith("chatalign: error: ") and expected in err and err.count("\n") == 0, err
    assert not out.exists()


@pytest.mark.parametrize("stage", [s for s in STAGES if s != "sft"])
def test_every_stage_refuses_unknown_keys_and_wrong_types(stage, recipe_files, capsys):
    words = STAGES[stage][0]
    assert main([*words, "--config", str(recipe_files[stage]), "--dry-run", "no_such_key=1"]) == 2
    assert "no_such_key: unknown key" in error_of(capsys)
    assert main([*words, "--config", str(recipe_files[stage]), "--dry-run", "model.dtype=[1]"]) == 2
    assert "model.dtype" in error_of(capsys)


def test_sft_bad_data_exits_2_and_leaves_no_run_directory(recipe_files, tmp_path, capsys):
    f = bad_copy(QS / "sft_train.jsonl", tmp_path / "train.jsonl", {5: BAD_CONV})
    out = tmp_path / "run"
    for extra in (["--dry-run"], []):
        assert main(["sft", "--config", str(recipe_files["sft"]), f"output_dir={out}", f"data.train={f}",
                     *extra]) == 2
        err = error_of(capsys)
        assert err.startswith(f"chatalign: error: {f}:5: messages.1.role: "), err
        assert not out.exists(), "a failed start left a run directory behind"


def test_reward_bad_pair_exits_2(recipe_files, tmp_path, capsys):
    f = bad_copy(QS / "pref_helpful_train.jsonl", tmp_path / "p.jsonl",
                 {4: json.dumps({"prompt": [{"role": "user", "content": "q"}], "chosen": "a", "rejected": "a"})},
                 keep=20)
    out = tmp_path / "run"
    assert main(["reward", "--config", str(recipe_files["reward"]), f"output_dir={out}",
                 f"data.sources=[{{path: {f}, name: h}}]"]) == 2
    assert f"{f}:4: rejected: " in error_of(capsys)
    assert not (out / "model").exists() and not (out / "manifest.json").exists()


def test_quarantine_counts_skipped_rows(recipe_files, tmp_path, capsys):
    f = bad_copy(QS / "sft_train.jsonl", tmp_path / "train.jsonl", {2: BAD_CONV, 6: "not json", 9: "[]"})
    q = tmp_path / "quarantine.jsonl"
    assert main(["sft", "--config", str(recipe_files["sft"]), "--dry-run", f"output_dir={tmp_path / 'run'}",
                 f"data.train={f}", "data.on_error=skip", f"data.quarantine={q}"]) == 0
    out = capsys.readouterr().out
    assert '"skipped_rows": 3' in out, out[-2000:]
    entries = [json.loads(x) for x in q.read_text().splitlines()]
    assert [e["source"] for e in entries] == [f"{f}:2", f"{f}:6", f"{f}:9"]


def test_real_process_exit_code_and_no_traceback(recipe_files, tmp_path):
    """The same through a real process: the exit status the shell sees, stderr one line."""
    r = subprocess.run([sys.executable, "-m", "chatalign.cli", "sft", "--config", str(recipe_files["sft"]),
                        "--dry-run", "train.global_batch_rows=notanumber"], capture_output=True, text=True, env=ENV,
                       timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "train.global_batch_rows" in r.stderr


BAD_PROMPT = json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
STAGE_BAD_DATA = {  # stage -> (source file, bad line, override template, field the message names)
    "reward": (QS / "pref_helpful_train.jsonl", json.dumps({"prompt": "q", "chosen": "a", "rejected": "a"}),
               "data.sources=[{{path: {f}, name: h}}]", "rejected"),
    "rlhf_rs": (QS / "prompts_train.jsonl", BAD_PROMPT, "data.prompts={f}", "messages.1.role"),
    "rlhf_ppo": (QS / "prompts_train.jsonl", BAD_PROMPT, "data.prompts={f}", "messages.1.role"),
    "gatt": (QS / "gatt_dialogues.jsonl", json.dumps({"id": "x", "user_turns": 5}), "synthesis.dialogues=[{f}]",
             "user_turns"),
    "safety": (QS / "safety_adversarial_train.jsonl", BAD_PROMPT, "distill.prompts=[{f}]", "messages.1.role"),
}


@pytest.mark.parametrize("stage", list(STAGE_BAD_DATA))
def test_every_stage_refuses_bad_data_and_writes_nothing(stage, recipe_files, tmp_path, capsys):
    src, bad, override, field = STAGE_BAD_DATA[stage]
    f = bad_copy(src, tmp_path / f"bad{src.suffix}", {2: bad})
    out = tmp_path / "run"
    for extra in (["--dry-run"], []):
        code = main([*STAGES[stage][0], "--config", str(recipe_files[stage]), f"output_dir={out}",
                     override.format(f=f), *extra])
        lines = error_of(capsys).strip().splitlines()
        start = [i for i, ln in enumerate(lines) if ln.startswith("chatalign: error: ")]  # after progress bars
        assert code == 2 and len(start) == 1, lines
        assert any(ln.startswith((f"chatalign: error: {f}:2: {field}", f"{f}:2: {field}"))
                   for ln in lines[start[0]:]), lines
        assert not out.exists(), f"{stage}{extra}: a failed start left {sorted(out.rglob('*'))}"
