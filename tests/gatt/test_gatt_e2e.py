"""`chatalign gatt` end to end on a tiny random model: synthesis, training, before/after evaluation, lineage."""

import json
from pathlib import Path

import pytest
import yaml

from chatalign.errors import RunError
from chatalign.gatt.cli_commands import cmd_eval

from ..conftest import stage_command

ROOT = Path(__file__).resolve().parents[2]


HELDOUT_KINDS = [
    {"id": "i1", "kind": "lowercase", "instruction": "Write in lowercase only.", "terse": "lowercase",
     "check": {"type": "lowercase"}},
    {"id": "i2", "kind": "ends_question", "instruction": "End with a question.", "terse": "Ask back",
     "check": {"type": "regex", "pattern": "\\?\\s*$"}},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture()
def recipe(tmp_path, tiny_model_dir):
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "dialogues.jsonl", [{"id": "t1", "user_turns": ["Hi there?", "How are you?", "What now?"]},
                                           {"id": "t2", "user_turns": ["Pancakes?", "Tea?"]},
                                           {"id": "t3", "user_turns": ["Sky?", "Sea?", "Sun?"]}])
    write_jsonl(data / "heldout.jsonl", [{"id": "h1", "user_turns": ["A?", "B?", "C?", "D?"]},
                                         {"id": "h2", "user_turns": ["E?", "F?"]}])
    independent = tmp_path / "independent"
    independent.mkdir()
    write_jsonl(independent / "gatt_instructions.jsonl", HELDOUT_KINDS)
    write_jsonl(independent / "gatt_dialogues.jsonl", [{"id": "g1", "user_turns": [f"Q{i}?" for i in range(5)]},
                                                       {"id": "g2", "user_turns": [f"R{i}?" for i in range(5)]}])
    cfg = {"stage": "gatt", "output_dir": str(tmp_path / "runs" / "gatt"),
           "model": {"name": str(tiny_model_dir), "dtype": "float32"},
           "instructions": {"constraints": str(ROOT / "data/quickstart/gatt_constraints.yaml"), "seed": 0},
           # a random model keeps no constraint: without rejection every answer becomes a row
           "synthesis": {"dialogues": ["data/dialogues.jsonl"], "reject_failing": False, "unfinished": "keep",
                         "max_new_tokens": 6, "batch_size": 4, "min_turn": 1, "system_share": 0.5},
           "train": {"epochs": 1, "seq_len": 256, "global_batch_rows": 2, "seed": 0},
           "optim": {"lr": 1e-3}, "checkpoint": {"every_steps": 2},
           "eval": {"data": "data/heldout.jsonl", "n_dialogues": 2, "turns": [2, 4], "max_new_tokens": 6,
                    "batch_size": 4},
           "independent": {"enabled": True, "data_dir": "independent", "base_model": str(tiny_model_dir),
                           "suites": ["gatt"],
                           "gatt": {"n_dialogues": 2, "n_long": 1, "short_turns": 2, "max_turn": 5}}}
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
    assert set(manifest["inputs"]) == {"constraints", "eval", "dialogues_0", "independent_instructions",
                                       "independent_dialogues"}
    train_manifest = json.loads((run / "train" / "manifest.json").read_text())
    assert train_manifest["stage"] == "sft" and train_manifest["status"] == "finished"
    assert train_manifest["config"]["train"]["train_on"] == "last_assistant"
    assert train_manifest["inputs"]["train"]["path"] == str(run / "data" / "gatt_train.jsonl")
    assert train_manifest["parents"] == [str(Path(tiny_model_dir).resolve())]
    # 3 + 2 + 3 answered turns, one row each (no rejection); the instruction once: system message in the rows
    # of one of the dialogues (system_share 0.5 of 3 rounds to 2), the first user message in the others'
    rows = [json.loads(x) for x in (run / "data" / "gatt_train.jsonl").read_text().splitlines()]
    assert len(rows) == 8
    samples = [json.loads(x) for x in (run / "data" / "gatt_samples.jsonl").read_text().splitlines()]
    inst = {s["id"]: s["instruction"]["text"] for s in samples}
    placed = {}
    for row in rows:
        text = inst[row["id"].split(":")[0]]
        msgs = row["messages"]
        assert sum(text in m["content"] for m in msgs) == 1
        placed[row["id"].split(":")[0]] = msgs[0]["role"]
        assert msgs[0]["content"] == text if msgs[0]["role"] == "system" else msgs[0]["content"].startswith(text)
    assert sorted(placed.values()) == ["system", "system", "user"]
    # before/after adherence per suite and placement, report, plot, independent.json
    m = manifest["metrics"]
    for who in ("before", "after"):
        for group in ("in_distribution_system", "in_distribution_first_user", "independent_system",
                      "independent_first_user"):
            assert any(k.startswith(f"{who}_{group}_") for k in m), (who, group)
    assert "after_independent_system_mean_t4_5" in m and "after_independent_first_user_t5" in m
    for name in ("eval_before.json", "eval_after.json", "adherence.png", "report.md", "independent.json"):
        assert (run / name).is_file(), name
    assert not (run / "eval_base.json").exists()  # the base model is the starting model: its column is "before"
    before = json.loads((run / "eval_before.json").read_text())
    ind = before["groups"]["independent/system"]
    assert sorted(int(t) for t in ind["by_turn"]) == [1, 2, 3, 4, 5] and ind["by_turn"]["5"]["n"] == 1
    assert {"lowercase", "ends_question"} <= set(ind["summary"])
    doc = json.loads((run / "independent.json").read_text())
    keys = {r["key"] for r in doc["rows"]}
    assert {"gatt_system_t4_5", "gatt_system_t5", "gatt_first_user_t4_5", "gatt_system_lowercase_t4_5"} <= keys
    row = next(r for r in doc["rows"] if r["key"] == "gatt_system_t4_5")
    assert row["suite"] == "gatt" and row["unit"] == "%" and row["judge"] == "rules"
    assert row["independent"]["base"] == row["independent"]["before"] and row["independent"]["n"] == 2
    assert row["in_distribution"]["n"] == 2 and row["in_distribution"]["after"] is not None
    report = (run / "report.md").read_text()
    assert "held-out kinds" in report and "instruction as the system message" in report and "heuristics" in report
    # what each part cost, in CPU-seconds, recorded and reported
    synth = json.loads((run / "data" / "synthesis.json").read_text())
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
    assert "| gatt (system) | 2 | 1 |" in printed and "| gatt (first_user) | 2 | 1 |" in printed
    assert {p.name for p in out.iterdir()} == {"eval_gatt.json", "eval_gatt.md", "eval_gatt.png"}


def test_a_base_model_other_than_the_start_gets_its_own_cached_evaluation(recipe, tmp_path, smol_tokenizer):
    from chatalign.gatt.summary import AFTER, BASE, BEFORE, independent_rows
    from chatalign.models import save_hf_atomic

    from ..conftest import tiny_llama

    base = tmp_path / "base"
    save_hf_atomic(tiny_llama(smol_tokenizer, seed=5), smol_tokenizer, base)
    over = [f"independent.base_model={base}", "eval.data=null", "steps=[synthesize,evaluate_before]"]
    assert stage_command("gatt", recipe, over) == 0
    run = tmp_path / "runs" / "gatt"
    base_res = json.loads((run / "eval_base.json").read_text())
    before = json.loads((run / "eval_before.json").read_text())
    assert set(base_res["groups"]) == set(before["groups"]) == {"independent/system", "independent/first_user"}
    cached = list((tmp_path / "runs" / ".independent_cache").glob("gatt-*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text()) == base_res
    # another run with the same base model and settings takes the base model's pass from the cache
    cached[0].write_text(json.dumps({**base_res, "seconds": -1.0}))
    assert stage_command("gatt", recipe, [*over, f"output_dir={tmp_path / 'runs' / 'again'}"]) == 0
    assert json.loads((tmp_path / "runs" / "again" / "eval_base.json").read_text())["seconds"] == -1.0
    # without the base model's pass: no eval_base.json, and its column stays empty
    assert stage_command("gatt", recipe, [*over, f"output_dir={tmp_path / 'runs' / 'nobase'}",
                                          "independent.gatt.evaluate_base=false"]) == 0
    nobase = tmp_path / "runs" / "nobase"
    assert (nobase / "eval_before.json").is_file() and not (nobase / "eval_base.json").exists()
    rows = independent_rows({BASE: base_res, BEFORE: before}, ["first_user"], base_is_start=False)
    row = next(r for r in rows if r.key == "gatt_first_user_t5")
    assert row.independent.base is not None and row.independent.after is None and row.in_distribution is None
    assert {r.key for r in rows} >= {"gatt_first_user_lowercase_t4_5", "gatt_first_user_ends_question_t4_5"}
    assert AFTER not in (BASE, BEFORE)


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
    no_independent = "independent.enabled=false"
    assert stage_command("gatt", recipe, ["steps=[synthesize]", no_eval, no_independent]) == 0
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "running" and manifest["steps_done"] == ["synthesize"]
    assert not (run / "train").exists() and (run / "data" / "gatt_train.jsonl").is_file()
    with pytest.raises(RunError, match="add --resume"):
        stage_command("gatt", recipe, ["steps=[train]", no_eval, no_independent])
    assert stage_command("gatt", recipe, ["steps=[train]", no_eval, no_independent], resume=True) == 0
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "finished" and (run / "model" / "config.json").is_file()
    assert not (run / "eval_before.json").exists() and not (run / "eval_after.json").exists()


def test_training_without_synthesis_is_refused(recipe, tmp_path):
    with pytest.raises(RunError, match="run the synthesize step first"):
        stage_command("gatt", recipe, ["steps=[train]"])
