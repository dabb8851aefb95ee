"""`chatalign gatt` end to end on a tiny random model: synthesis, training, before/after evaluation, lineage."""

import json
from pathlib import Path

import pytest
import yaml

from chatalign.errors import RunError
from chatalign.gatt.cli_commands import cmd_eval

from ..conftest import stage_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def recipe(tmp_path, tiny_model_dir):
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"id": "t1", "user_turns": ["Hi there?", "How are you?", "What now?"]},
            {"id": "t2", "user_turns": ["Pancakes?", "Tea?"]},
            {"id": "t3", "user_turns": ["Sky?", "Sea?", "Sun?"]}]
    (data / "dialogues.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (data / "heldout.jsonl").write_text(json.dumps({"id": "h1", "user_turns": ["A?", "B?", "C?", "D?"]}) + "\n"
                                        + json.dumps({"id": "h2", "user_turns": ["E?", "F?"]}) + "\n")
    cfg = {"stage": "gatt", "output_dir": str(tmp_path / "runs" / "gatt"),
           "model": {"name": str(tiny_model_dir), "dtype": "float32"},
           "instructions": {"constraints": str(ROOT / "data/quickstart/gatt_constraints.yaml"), "seed": 0},
           # a random model keeps no constraint: without rejection every answer becomes a row
           "synthesis": {"dialogues": ["data/dialogues.jsonl"], "reject_failing": False, "unfinished": "keep",
                         "max_new_tokens": 6, "batch_size": 4, "min_turn": 1},
           "train": {"epochs": 1, "seq_len": 256, "global_batch_rows": 2, "seed": 0},
           "optim": {"lr": 1e-3}, "checkpoint": {"every_steps": 2},
           "eval": {"data": "data/heldout.jsonl", "n_dialogues": 2, "turns": [2, 4], "max_new_tokens": 6,
                    "batch_size": 4}}
    path = tmp_path / "gatt.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_gatt_stage_end_to_end(recipe, tmp_path, tiny_model_dir, capsys):
    assert stage_command("gatt", recipe) == 0
    run = tmp_path / "runs" / "gatt"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stage"] == "gatt" and manifest["status"] == "finished"
    # lineage: the starting model is the parent; the SFT sub-run trained from it on this run's data
    assert manifest["parents"] == [str(Path(tiny_model_dir).resolve())]
    assert manifest["lineage"]["train_run"] == "train"
    assert set(manifest["inputs"]) == {"constraints", "eval", "dialogues_0"}
    train_manifest = json.loads((run / "train" / "manifest.json").read_text())
    assert train_manifest["stage"] == "sft" and train_manifest["status"] == "finished"
    assert train_manifest["config"]["train"]["train_on"] == "last_assistant"
    assert train_manifest["inputs"]["train"]["path"] == str(run / "data" / "gatt_train.jsonl")
    assert train_manifest["parents"] == [str(Path(tiny_model_dir).resolve())]
    # 3 + 2 + 3 answered turns, one row each (no rejection); the instruction only in the first user turn
    rows = [json.loads(x) for x in (run / "data" / "gatt_train.jsonl").read_text().splitlines()]
    assert len(rows) == 8
    samples = [json.loads(x) for x in (run / "data" / "gatt_samples.jsonl").read_text().splitlines()]
    inst = {s["id"]: s["instruction"]["text"] for s in samples}
    for row in rows:
        users = [m["content"] for m in row["messages"] if m["role"] == "user"]
        text = inst[row["id"].split(":")[0]]
        assert users[0].startswith(text) and not any(text in u for u in users[1:])
    # before/after adherence at the asked turns, report and plot, the model loadable through the run dir
    m = manifest["metrics"]
    assert {"before_adherence_t2", "after_adherence_t2", "before_adherence_t4", "after_adherence_t4"} <= set(m)
    for name in ("eval_before.json", "eval_after.json", "adherence.png", "report.md"):
        assert (run / name).is_file(), name
    report = (run / "report.md").read_text()
    assert "| before GAtt | 2 |" in report and "| after GAtt | 4 |" in report and "heuristics" in report
    # what each part cost, in CPU-seconds, recorded and reported
    synth = json.loads((run / "data" / "synthesis.json").read_text())
    before = json.loads((run / "eval_before.json").read_text())
    assert synth["cpu_seconds"] >= 0 and before["cpu_seconds"] >= 0  # a tiny model's evaluation can round to 0.0
    assert f"Synthesis took {synth['cpu_seconds']} CPU-seconds." in report
    assert f"Evaluation CPU-seconds: before GAtt {before['cpu_seconds']}, after GAtt" in report
    # reuse_prefix (the default): later turns reuse the dialogue's cached prefix
    assert before["generation"]["reused_tokens"] > 0
    assert (run / "model" / "config.json").is_file()
    from chatalign.models import resolve_model_path

    assert Path(resolve_model_path(str(run))).resolve() == (run / "train" / "model").resolve()
    # a second run into the same directory is refused; --resume of a finished run redoes nothing
    with pytest.raises(RunError, match="already holds a finished GAtt run"):
        stage_command("gatt", recipe)
    stamp = (run / "eval_after.json").stat().st_mtime_ns
    assert stage_command("gatt", recipe, resume=True) == 0
    assert (run / "eval_after.json").stat().st_mtime_ns == stamp
    # `chatalign eval gatt` on the run directory: its own instruction settings, files into out_dir
    capsys.readouterr()
    out = tmp_path / "eval_out"
    assert cmd_eval(str(run), str(tmp_path / "data" / "heldout.jsonl"), str(out), [2], 1) == 0
    printed = capsys.readouterr().out
    assert "| gatt | 2 | 1 |" in printed
    assert {p.name for p in out.iterdir()} == {"eval_gatt.json", "eval_gatt.md", "eval_gatt.png"}


def test_eval_turn_argument():
    from chatalign.gatt.cli_commands import report_turns

    assert report_turns(20, [9]) == [2, 4, 6, 20]
    assert report_turns(5, [9]) == [2, 4, 5]
    assert report_turns([6, 2, 2], [9]) == [2, 6]
    assert report_turns(None, [20, 2]) == [2, 20]


def test_dry_run_validates_without_a_run(recipe, tmp_path, capsys):
    assert stage_command("gatt", recipe, ["instructions.terse_fraction=1.0"], dry_run=True) == 0
    out = capsys.readouterr().out
    assert '"dialogues": 3' in out and '"terse_instructions": 3' in out and "dry run: config and data are valid" in out
    assert not (tmp_path / "runs").exists()


def test_steps_run_in_separate_invocations(recipe, tmp_path):
    run = tmp_path / "runs" / "gatt"
    no_eval = "eval.data=null"  # keeps this test short; evaluation steps are covered above
    assert stage_command("gatt", recipe, ["steps=[synthesize]", no_eval]) == 0
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "running" and manifest["steps_done"] == ["synthesize"]
    assert not (run / "train").exists() and (run / "data" / "gatt_train.jsonl").is_file()
    with pytest.raises(RunError, match="add --resume"):
        stage_command("gatt", recipe, ["steps=[train]", no_eval])
    assert stage_command("gatt", recipe, ["steps=[train]", no_eval], resume=True) == 0
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "finished" and (run / "model" / "config.json").is_file()
    assert not (run / "eval_before.json").exists() and not (run / "eval_after.json").exists()


def test_training_without_synthesis_is_refused(recipe, tmp_path):
    with pytest.raises(RunError, match="run the synthesize step first"):
        stage_command("gatt", recipe, ["steps=[train]"])
