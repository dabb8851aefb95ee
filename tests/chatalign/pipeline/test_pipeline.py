"""`chatalign pipeline`: step keys (what re-runs when data or a step changes), statuses, dry runs of the
recipes, the report's fallbacks, and end to end on a tiny random model: killed in the middle of the RLHF
step, resumed, with no finished step run twice and the final model's lineage intact."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from chatalign.config import load_config, validate
from chatalign.errors import ConfigError, UserError
from chatalign.pipeline.config import PipelineConfig
from chatalign.pipeline.runner import PipelineState, eta, plan_steps, run_pipeline, step_status

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "data" / "quickstart"
QUICKSTART = ROOT / "recipes" / "quickstart" / "pipeline.yaml"
STEPS = ["sft", "reward_helpful", "reward_safety", "rlhf_round1", "gatt", "safety"]


def keys_of(cfg: PipelineConfig) -> dict[str, str]:
    return {p["step"].name: p["key"] for p in plan_steps(cfg)}


# -- keys -----------------------------------------------------------------------------------------------------
def test_swapping_the_preference_data_reruns_the_reward_models_and_everything_after(tmp_path):
    base = load_config(PipelineConfig, QUICKSTART, [f"output_dir={tmp_path / 'runs'}"])
    before = keys_of(base)
    assert list(before) == STEPS and len(set(before.values())) == len(STEPS)
    # the user's own file: TRL conversational pairs (another supported format), a different path and content
    mine = tmp_path / "my_prefs.jsonl"
    rows = [json.loads(x) for x in (DATA / "pref_helpful_train.jsonl").read_text().splitlines()[:20]]
    mine.write_text("".join(json.dumps({"prompt": r["prompt"], "chosen": [{"role": "assistant", "content": r["chosen"]}],
                                        "rejected": [{"role": "assistant", "content": r["rejected"]}]}) + "\n"
                            for r in rows))
    swapped = load_config(PipelineConfig, QUICKSTART,
                          [f"output_dir={tmp_path / 'runs'}", f"data.preferences_helpful={mine}"])
    after = keys_of(swapped)
    assert after["sft"] == before["sft"]
    assert all(after[s] != before[s] for s in STEPS[1:])
    # same path, new content: the same steps change again; the key is stable when nothing changes
    again = keys_of(swapped)
    assert again == after
    with open(mine, "a") as f:
        f.write(mine.read_text().splitlines()[0] + "\n")
    edited = keys_of(swapped)
    assert edited["sft"] == before["sft"] and all(edited[s] != after[s] for s in STEPS[1:])


def test_a_change_in_a_late_step_leaves_the_earlier_ones_alone(tmp_path):
    plain = keys_of(load_config(PipelineConfig, QUICKSTART, [f"output_dir={tmp_path}"]))
    gatt_data = tmp_path / "heldout.jsonl"
    shutil.copy(DATA / "gatt_dialogues_heldout.jsonl", gatt_data)
    gatt_data.write_text(gatt_data.read_text().splitlines()[0] + "\n")
    changed = keys_of(load_config(PipelineConfig, QUICKSTART,
                                  [f"output_dir={tmp_path}", f"data.gatt_dialogues_heldout={gatt_data}"]))
    assert [s for s in STEPS if changed[s] != plain[s]] == ["gatt", "safety"]


def test_enabling_round_two_moves_gatt_onto_it(tmp_path):
    """The loop's four steps: fresh comparisons from round 1's model, both RMs retrained with them, round 2 on
    the retrained RMs; GAtt then starts from round 2."""
    raw = yaml.safe_load(QUICKSTART.read_text())
    raw["output_dir"] = str(tmp_path)
    loop = ("prefs_round2", "reward_helpful_round2", "reward_safety_round2", "rlhf_round2")
    for step in raw["steps"]:
        if step["name"] in loop:
            step["enabled"] = True
    cfg = validate(PipelineConfig, raw, recipe_dir=QUICKSTART.parent)
    plan = {p["step"].name: p for p in plan_steps(cfg)}
    runs = tmp_path.resolve()
    assert plan["prefs_round2"]["values"]["model.name"] == str(runs / "rlhf_round1")
    sources = [s["path"] for s in plan["reward_helpful_round2"]["values"]["data.sources"]]
    assert str(runs / "prefs_round2" / "preferences.jsonl") in sources
    assert plan["rlhf_round2"]["values"]["reward.helpful"] == str(runs / "reward_helpful_round2")
    assert plan["rlhf_round2"]["values"]["reward.safety"] == str(runs / "reward_safety_round2")
    assert plan["gatt"]["upstream"] == ["rlhf_round2"]
    assert plan["gatt"]["values"]["model.name"] == str(runs / "rlhf_round2")
    plain = keys_of(load_config(PipelineConfig, QUICKSTART, [f"output_dir={tmp_path}"]))
    assert plan["rlhf_round1"]["key"] == plain["rlhf_round1"] and plan["gatt"]["key"] != plain["gatt"]


def test_bad_references_are_config_errors(tmp_path):
    def cfg(steps, data=None):
        return PipelineConfig.model_validate({"output_dir": str(tmp_path), "data": data or {}, "steps": steps})

    sft = {"name": "sft", "stage": "sft", "recipe": str(ROOT / "recipes/quickstart/sft.yaml")}
    with pytest.raises(ValueError, match="unknown data key 'nope'"):
        cfg([{**sft, "set": {"data.train": "${data.nope}"}}])
    with pytest.raises(ValueError, match="'later' is not an earlier step"):
        cfg([{**sft, "set": {"model.name": "${runs.later}"}}, {**sft, "name": "later"}])
    with pytest.raises(ValueError, match="no enabled rlhf step"):
        cfg([{**sft, "set": {"model.name": "${last.rlhf}"}}])
    off = cfg([{**sft, "enabled": False}, {**sft, "name": "b", "set": {"model.name": "${runs.sft}"}}])
    with pytest.raises(UserError, match="disabled"):
        plan_steps(off)
    with pytest.raises(ConfigError, match="unknown key"):
        plan_steps(cfg([{**sft, "set": {"train.epoch": 1}}]))
    gone = cfg([{**sft, "set": {"data.train": "${data.x}"}}], {"x": str(tmp_path / "nope.jsonl")})
    with pytest.raises(UserError, match="data files not found:\n  data.x"):
        plan_steps(gone)
    assert plan_steps(gone, missing_ok=True)[0]["missing"] == [f"data.x: {tmp_path / 'nope.jsonl'}"]


# -- statuses, dry runs, ETA ----------------------------------------------------------------------------------
def fake_run(path: Path, status: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "manifest.json").write_text(json.dumps({"status": status}))


def test_dry_run_statuses(tmp_path, capsys):
    cfg = load_config(PipelineConfig, QUICKSTART, [f"output_dir={tmp_path / 'out'}"])
    plan = {p["step"].name: p for p in plan_steps(cfg)}
    state = PipelineState(tmp_path / "out")
    state.set("sft", key=plan["sft"]["key"], status="finished", seconds=90.0)
    fake_run(plan["sft"]["dir"], "finished")
    state.set("reward_helpful", key=plan["reward_helpful"]["key"], status="running", seconds=30.0)
    fake_run(plan["reward_helpful"]["dir"], "running")
    state.set("reward_safety", key="0123456789abcdef", status="finished")
    fake_run(plan["reward_safety"]["dir"], "finished")
    listing = sorted(p.name for p in (tmp_path / "out").iterdir())
    out = run_pipeline(cfg, dry_run=True)
    assert [s["status"] for s in out["steps"]] == ["up to date", "resume", "changed", "new", "new", "new"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == listing  # a dry run writes nothing
    printed = capsys.readouterr().out
    assert "5 step(s) would run" in printed and "ETA > 30s (4 of 5 steps never ran before)" in printed
    # the finished step's data changes: it and everything after it re-run
    sft_data = tmp_path / "sft.jsonl"
    sft_data.write_text((DATA / "sft_train.jsonl").read_text().splitlines()[0] + "\n")
    cfg2 = load_config(PipelineConfig, QUICKSTART, [f"output_dir={tmp_path / 'out'}", f"data.sft_train={sft_data}"])
    statuses = [s["status"] for s in run_pipeline(cfg2, dry_run=True)["steps"]]
    assert statuses == ["changed", "changed", "changed", "new", "new", "new"]
    assert step_status({**plan["sft"], "missing": ["data.x: y"]}, state) == "missing data"


def test_eta_from_recorded_seconds(tmp_path):
    state = PipelineState(tmp_path)
    todo = [{"step": PipelineConfig.model_validate(
        {"steps": [{"name": n, "stage": "sft", "recipe": "x.yaml"}]}).steps[0]} for n in ("a", "b")]
    assert eta(todo, state).startswith("ETA unknown")
    state.set("a", seconds=75.0)
    assert eta(todo, state) == "ETA > 1m15s (1 of 2 steps never ran before)"
    state.set("b", seconds=3600.0)
    assert eta(todo, state) == "ETA 1h01m"
    assert json.loads((tmp_path / "pipeline_state.json").read_text())["steps"]["b"]["seconds"] == 3600.0


@pytest.mark.parametrize("recipe", ["quickstart", "llama2-7b"])
def test_the_recipe_pipelines_pass_a_dry_run(recipe, tmp_path, capsys):
    from chatalign.cli.main import main

    path = ROOT / "recipes" / recipe / "pipeline.yaml"
    assert main(["pipeline", "--config", str(path), f"output_dir={tmp_path}", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "step configs valid" in out
    cfg = load_config(PipelineConfig, path)
    stages = [s.stage for s in cfg.steps if s.enabled]
    assert stages[0] == "sft" and stages[-2:] == ["gatt", "safety"]
    if recipe == "llama2-7b":  # the paper's rounds: rejection sampling V1-V4, PPO on top in V5, both RMs retrained
        rounds = [s for s in cfg.steps if s.stage == "rlhf"]  # before each from V2 (test_llama2_loop.py)
        assert [s.set["mode"] for s in rounds] == ["rs"] * 4 + ["rs+ppo"]
        assert stages.count("reward") == 2 * 5 and stages.count("prefs") == 4
    else:
        assert stages.count("reward") == 2
        assert "data files to provide first" not in out or "data.sft_train" in out


def test_report_of_a_pipeline_that_has_not_run(tmp_path):
    from chatalign.pipeline.report import write_pipeline_report

    cfg = load_config(PipelineConfig, QUICKSTART, [f"output_dir={tmp_path}"])
    md, page = write_pipeline_report(cfg, plan_steps(cfg), tmp_path)
    text = md.read_text()
    for heading in ("Lineage of the final model", "SFT", "Reward models", "RLHF rounds", "Ghost Attention",
                    "Safety context distillation", "DPO", "Example dialogues"):
        assert f"## {heading}" in text, heading
    # one line per stage section (sft, reward, dpo, rlhf, gatt, safety), lineage and examples
    assert text.count("Stage not run") == 8 and "rlhf_round2" in text and "disabled" in text
    assert "could not be built" not in text
    assert page.read_text().startswith("<!DOCTYPE html>") and "<table>" in page.read_text()


# -- end to end -----------------------------------------------------------------------------------------------
LOOP = ("prefs_round2", "reward_helpful_round2", "reward_safety_round2", "rlhf_round2")


def tiny_recipes(d: Path, model: Path, loop: bool = False) -> Path:
    """Stage recipes sized for a tiny random model, and the pipeline that chains them (with `loop`: up to round
    2 with the paper's loop enabled, no GAtt and safety)."""
    m = {"name": str(model), "dtype": "float32"}
    recipes = {
        "sft": {"stage": "sft", "model": m, "data": {"train": "x", "max_rows": 8},
                "train": {"epochs": 1, "seq_len": 256, "global_batch_rows": 2, "seed": 0}, "optim": {"lr": 1e-3},
                "checkpoint": {"every_steps": 2, "keep_last": 1},
                "eval": {"max_prompts": 3, "max_new_tokens": 6, "batch_size": 4}},
        "reward": {"stage": "reward", "kind": "helpfulness", "model": m,
                   "data": {"sources": [{"path": "x"}], "total": 12},
                   "train": {"global_batch_pairs": 6, "max_seq_len": 128, "row_tokens": 256, "epochs": 1},
                   "optim": {"lr": 1e-3, "warmup_ratio": 0.0}, "checkpoint": {"every_steps": 1, "keep_last": 1},
                   "eval": {"max_pairs": 8, "batch_tokens": 1024}},
        "rlhf": {"stage": "rlhf", "mode": "rs+ppo", "start": "x", "model": {"dtype": "float32"},
                 "reward": {"helpful": "x", "safety": "x"}, "data": {"prompts": "x", "max_prompts": 4, "max_heldout": 3},
                 "rs": {"num_samples": 2, "max_new_tokens": 6, "skip_unfinished": False, "batch_size": 8,
                        "chunk_prompts": 4, "sweep_temperatures": [],
                        "train": {"seq_len": 128, "global_batch_rows": 2, "epochs": 1}, "optim": {"lr": 1e-3}},
                 "ppo": {"iterations": 4, "batch_prompts": 4, "minibatch": 2, "max_new_tokens": 6,
                         "gen_batch_size": 4, "score_batch_size": 4, "optim": {"lr": 1e-3},
                         "early_stopping": {"eval_every": 2}},
                 "eval": {"max_new_tokens": 6, "batch_size": 4, "temperature": 1.0}},
        "gatt": {"stage": "gatt", "model": m, "instructions": {"constraints": "x", "seed": 0},
                 "synthesis": {"dialogues": ["x"], "max_dialogues": 2, "max_turns": 2, "reject_failing": False,
                               "unfinished": "keep", "max_new_tokens": 6, "batch_size": 4, "min_turn": 1},
                 "train": {"epochs": 1, "seq_len": 256, "global_batch_rows": 2, "seed": 0}, "optim": {"lr": 1e-3},
                 "checkpoint": {"every_steps": 2},
                 "eval": {"n_dialogues": 2, "n_long": 0, "turns": [2, 3], "max_new_tokens": 6, "batch_size": 4}},
        "safety": {"stage": "safety", "model": m, "safety_rm": {"name": "x", "dtype": "float32", "batch_tokens": 1024},
                   "distill": {"prompts": ["x"], "templates": "x", "max_prompts": 4, "max_new_tokens": 6,
                               "temperature": 1.0, "top_p": 1.0, "batch_size": 8, "unfinished": "keep", "seed": 0},
                   "train": {"epochs": 1, "seq_len": 512, "global_batch_rows": 1, "seed": 0}, "optim": {"lr": 1e-3},
                   "checkpoint": {"every_steps": 50, "keep_last": 1},
                   "eval": {"max_prompts": 2, "max_new_tokens": 6, "batch_size": 8, "threshold": 0.5}},
        "prefs": {"stage": "prefs", "model": m, "data": {"prompts": ["x"], "max_prompts": 24},
                  "answers": [{"temperature": 1.0, "top_p": 1.0}, {"temperature": 1.3, "top_p": 1.0}],
                  "generation": {"max_new_tokens": 6, "batch_size": 24}, "heldout_fraction": 0.5},
    }
    for name, body in recipes.items():
        (d / f"{name}.yaml").write_text(yaml.safe_dump(body))
    pipeline = yaml.safe_load(QUICKSTART.read_text())
    pipeline["output_dir"] = str(d / "runs")
    pipeline["data"] = {k: str((QUICKSTART.parent / v).resolve()) for k, v in pipeline["data"].items()}
    if loop:
        pipeline["steps"] = [s for s in pipeline["steps"] if s["stage"] not in ("gatt", "safety")]
        for step in pipeline["steps"]:
            step["enabled"] = step.get("enabled", True) or step["name"] in LOOP
            if step["stage"] == "rlhf":
                step["set"]["mode"] = "rs"
            if step["stage"] == "reward":  # the tiny recipe draws `total` pairs; one of the sources may be small
                step["set"]["data.total"] = 12
    else:
        pipeline["steps"] = [s for s in pipeline["steps"] if s["name"] not in LOOP]
    for step in pipeline["steps"]:
        step["recipe"] = f"{step['stage']}.yaml"
        step["set"].pop("model.name", None) if step["name"] == "sft" else None
    for step in pipeline["steps"]:
        if step["name"].startswith("reward_safety"):
            step["set"]["kind"] = "safety"
    pipeline["report_examples"] = 3
    path = d / "pipeline.yaml"
    path.write_text(yaml.safe_dump(pipeline, sort_keys=False))
    return path


def launch(config: Path, log: Path, **fault: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", **fault}
    return subprocess.Popen([sys.executable, "-m", "chatalign.cli", "pipeline", "--config", str(config),
                             "--no-progress"], cwd=config.parent, env=env, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT)


def test_pipeline_killed_mid_stage_resumes_without_rerunning_finished_steps(tmp_path, tiny_model_dir, capsys,
                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tiny_recipes(tmp_path, tiny_model_dir)
    runs = tmp_path / "runs"
    # the run is held inside the write of PPO's second checkpoint (the first is on disk) until it is killed
    ckpts = runs / "rlhf_round1" / "ppo" / "checkpoints"
    proc = launch(config, tmp_path / "first.log", CHATALIGN_FAULT_PAUSE_IN_CHECKPOINT="3600",
                  CHATALIGN_FAULT_PAUSE_AT="rlhf_round1/ppo/checkpoints/step-0000002")
    while proc.poll() is None and not any(ckpts.glob(".tmp-*/.writing")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # no chance to save anything: the PPO checkpoint on disk is all there is
    proc.wait(timeout=60)
    log1 = (tmp_path / "first.log").read_text()
    assert proc.returncode == -signal.SIGKILL, log1[-3000:]
    assert [p.name for p in ckpts.glob("step-*")] == ["step-0000001"]
    rl = json.loads((runs / "rlhf_round1" / "manifest.json").read_text())
    assert rl["status"] == "running"
    state1 = json.loads((runs / "pipeline_state.json").read_text())["steps"]
    done = STEPS[:3]
    assert [n for n in STEPS if state1.get(n, {}).get("status") == "finished"] == done
    manifests = {n: (runs / n / "manifest.json").read_bytes() for n in done}
    samples_mtime = (runs / "rlhf_round1" / "data" / "samples.jsonl").stat().st_mtime_ns

    t0 = time.time()
    proc = launch(config, tmp_path / "second.log")
    proc.wait(timeout=300)
    log2 = (tmp_path / "second.log").read_text()
    assert proc.returncode == 0, log2[-3000:]
    print(f"resumed run: {time.time() - t0:.0f} s")
    assert "rlhf: rlhf_round1 (resuming)" in log2 and "ETA" in log2
    assert not any(f"{stage}: {n}" in log2 for n, stage in (("sft", "sft"), ("reward_helpful", "reward"),
                                                             ("reward_safety", "reward")))
    state2 = json.loads((runs / "pipeline_state.json").read_text())["steps"]
    for n in done:  # no finished step ran twice
        assert (runs / n / "manifest.json").read_bytes() == manifests[n], n
        assert state2[n] == state1[n], n
    assert all(state2[n]["status"] == "finished" for n in STEPS)
    rl = json.loads((runs / "rlhf_round1" / "manifest.json").read_text())
    assert rl["status"] == "finished" and len(rl["resumed_at"]) == 1
    assert (runs / "rlhf_round1" / "data" / "samples.jsonl").stat().st_mtime_ns == samples_mtime  # RS not redone

    # lineage: safety <- gatt <- rlhf_round1 <- sft <- the tiny model, with the two RMs beside
    def parents(n):
        return json.loads((runs / n / "manifest.json").read_text())["parents"]

    d = {n: str((runs / n).resolve()) for n in STEPS}
    assert parents("safety") == [d["gatt"], d["reward_safety"]]
    assert parents("gatt") == [d["rlhf_round1"]]
    assert parents("rlhf_round1") == [d["sft"], d["reward_helpful"], d["reward_safety"]]
    assert parents("reward_helpful") == parents("reward_safety") == [d["sft"]]
    assert parents("sft") == [str(Path(tiny_model_dir).resolve())]

    report = (runs / "report.md").read_text()
    assert "Final model: **safety** ← gatt ← rlhf_round1 ← sft ← " in report
    not_run = [line for line in report.splitlines() if "Stage not run" in line]
    assert not_run == ["Stage not run (step dpo is disabled): no DPO model."] and "could not be built" not in report
    for png in ("report_sft_loss.png", "report_rm_accuracy.png", "report_ppo.png", "report_gatt.png",
                "report_safety.png"):
        assert (runs / png).stat().st_size > 1000 and f"]({png})" in report, png
    assert "win rate vs previous" in report and "gain ± SE" in report and "after GAtt" in report
    assert "violation rate" in report
    page = (runs / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 5 and 'src="report_' not in page
    examples = report.split("## Example dialogues")[1]
    assert examples.count("\n| ") == 1 + 3  # header and three prompts
    assert "(not generated" not in examples

    # a third run (in this process: no second start-up to pay): everything is up to date, nothing runs,
    # the report is rewritten
    from chatalign.cli.main import main

    os.utime(runs / "report.md", ns=(0, 0))
    assert main(["pipeline", "--config", str(config), "--no-progress"]) == 0
    log3 = capsys.readouterr().out
    assert "===" not in log3 and log3.count("up to date") == len(STEPS), log3[-2000:]
    assert (runs / "report.md").stat().st_mtime_ns > 0
    assert json.loads((runs / "pipeline_state.json").read_text())["steps"] == state2


def run_with_full_disk(config: Path, log: Path, point: str) -> str:
    """Run the pipeline with every write whose path contains `point` failing as on a full disk
    (chatalign.runs.fault_disk_full); it must stop with exit 4 and one line naming the file. Returns the log."""
    proc = launch(config, log, CHATALIGN_FAULT_ENOSPC_AT=point)
    proc.wait(timeout=300)
    text = log.read_text()
    assert proc.returncode == 4, text[-3000:]
    last = text.splitlines()[-1]
    assert "Traceback" not in text and "no space left on the device while writing" in last and point in last
    return text


def finished_steps(runs: Path) -> list[str]:
    state = json.loads((runs / "pipeline_state.json").read_text())["steps"]
    return [n for n in STEPS if state.get(n, {}).get("status") == "finished"]


def test_pipeline_stopped_by_a_full_disk_says_so_in_one_line_and_resumes(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tiny_recipes(tmp_path, tiny_model_dir)
    runs = tmp_path / "runs"
    # the pipeline's own state file: nothing runs, nothing is left behind
    run_with_full_disk(config, tmp_path / "state.log", "pipeline_state.json")
    assert not (runs / "pipeline_state.json").exists() and not (runs / "sft" / "manifest.json").exists()
    # a stage's file (the safety RM's metrics log): the steps before it stay finished and are not run again
    run_with_full_disk(config, tmp_path / "first.log", "reward_safety/metrics.jsonl")
    assert finished_steps(runs) == STEPS[:2]
    kept = {n: (runs / n / "manifest.json").read_bytes() for n in STEPS[:2]}
    # the pipeline's report, written after the last step: every step is finished, no half-written report
    run_with_full_disk(config, tmp_path / "second.log", "runs/report.md")
    assert finished_steps(runs) == STEPS and not (runs / "report.md").exists()
    assert not [p.name for p in runs.glob(".*report*")]
    assert all((runs / n / "manifest.json").read_bytes() == kept[n] for n in kept)  # not run again
    proc = launch(config, tmp_path / "third.log")
    proc.wait(timeout=300)
    log3 = (tmp_path / "third.log").read_text()
    assert proc.returncode == 0, log3[-3000:]
    assert log3.count("up to date") == len(STEPS) and (runs / "report.md").is_file()


def test_the_loop_runs_round_two_on_reward_models_retrained_with_a_fresh_batch(tmp_path, tiny_model_dir,
                                                                               monkeypatch):
    """The paper's loop end to end on tiny models: a batch sampled from round 1's model and labelled by the
    rules, scored by the round-1 RMs on its held-out pairs; both RMs retrained with it and evaluated on those
    pairs; round 2 from round 1 on the retrained RMs."""
    monkeypatch.chdir(tmp_path)
    config = tiny_recipes(tmp_path, tiny_model_dir, loop=True)
    pipeline = yaml.safe_load(config.read_text())  # prompts whose rules a random model keeps about half the time
    prompts = tmp_path / "prefs_prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{k}", "messages": [{"role": "user", "content": f"Say {k}."}],
                                           "check": {"type": "regex", "pattern": ["[A-Z]", "[.,]", " a"][k % 3]}})
                               + "\n" for k in range(24)))
    for step in pipeline["steps"]:
        if step["name"] == "prefs_round2":
            step["set"]["data.prompts"] = [str(prompts)]
    config.write_text(yaml.safe_dump(pipeline, sort_keys=False))
    proc = launch(config, tmp_path / "loop.log")
    proc.wait(timeout=900)
    log = (tmp_path / "loop.log").read_text()
    assert proc.returncode == 0, log[-3000:]
    runs = tmp_path / "runs"
    d = {n: str((runs / n).resolve()) for n in ("rlhf_round1", "reward_helpful", "reward_safety", *LOOP)}
    batch = json.loads((runs / "prefs_round2" / "labels.json").read_text())
    assert batch["labelled"] == batch["train_pairs"] + batch["heldout_pairs"] and batch["heldout_pairs"] > 0
    assert set(batch["rm_accuracy_before"]) <= {"helpful", "safety"} and batch["rm_accuracy_before"]
    assert json.loads((runs / "prefs_round2" / "manifest.json").read_text())["parents"] == [d["rlhf_round1"]]
    for rm in ("reward_helpful_round2", "reward_safety_round2"):
        manifest = json.loads((runs / rm / "manifest.json").read_text())
        assert manifest["status"] == "finished"
        assert str(runs / "prefs_round2" / "preferences.jsonl") in json.dumps(manifest["config"]["data"]["sources"])
        per_file = json.loads((runs / rm / "eval.json").read_text())["per_file"]
        assert per_file["batch_round2"]["pairs"] == batch["heldout_pairs"]  # the batch's held-out pairs
    r2 = json.loads((runs / "rlhf_round2" / "manifest.json").read_text())
    assert r2["parents"] == [d["rlhf_round1"], d["reward_helpful_round2"], d["reward_safety_round2"]]
    assert r2["rlhf"]["round"] == 2
    report = (runs / "report.md").read_text()
    assert "## Preference batches: reward models before and after retraining" in report
    after = json.loads((runs / "reward_safety_round2" / "eval.json").read_text())["per_file"]["batch_round2"]
    before = batch["rm_accuracy_before"]["safety"]["accuracy"]
    assert f"| prefs_round2 | safety | {batch['heldout_pairs']} | {100 * before:.1f}% | {100 * after['accuracy']:.1f}% " \
           "(reward_safety_round2) |" in report
