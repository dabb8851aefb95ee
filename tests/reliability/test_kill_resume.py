"""Kill-and-resume matrix: every stage's CLI is SIGKILLed twice, once at a seeded random point after one of its
checkpoints and once in the middle of a checkpoint write, then resumed with --resume. The finished run must
equal an uninterrupted run with the same seed (weights and logged metrics), and after every kill the latest
checkpoint on disk must load.

`CHATALIGN_FAULT_PAUSE_IN_CHECKPOINT` makes each checkpoint write sleep with its files in the temporary
directory (marker `.writing`), which both widens the window for the first kill (tiny steps take milliseconds)
and lets the second kill land inside a write deterministically.
"""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ENV, STAGES, assert_loadable

PAUSE = 0.4  # seconds each checkpoint write sleeps in the killed runs
TIMING_KEY = re.compile(r"per_s|time|seconds|cpu|mem|elapsed|eta", re.I)


def command(stage: str, recipe: Path, out: Path, resume: bool) -> list[str]:
    words, _ = STAGES[stage]
    return [sys.executable, "-m", "chatalign.cli", *words, "--config", str(recipe), "--no-progress",
            f"output_dir={out}", *(["--resume"] if resume else [])]


def run_to_end(stage, recipe, out, resume=False):
    r = subprocess.run(command(stage, recipe, out, resume), capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def launch(stage, recipe, out, resume, log):
    env = {**ENV, "CHATALIGN_FAULT_PAUSE_IN_CHECKPOINT": str(PAUSE)}
    return subprocess.Popen(command(stage, recipe, out, resume), env=env, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT)


def wait_for(predicate, proc, timeout=240):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    return False


def kill(proc) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"


def writing(ck: Path) -> bool:
    return any(ck.glob(".tmp-*/.writing"))


def steps(ck: Path) -> list[int]:
    from chatalign.training.checkpoint import list_checkpoints

    return [int(p.name.split("-")[1]) for p in list_checkpoints(ck)]


def final_weights(run: Path) -> dict[str, Path]:
    return {str(p.relative_to(run)): p for p in run.rglob("*.safetensors")
            if "checkpoints" not in p.parts and "best" not in p.parts and not p.is_symlink()}


def metric_logs(run: Path) -> dict[str, list[dict]]:
    out = {}
    for p in run.rglob("metrics.jsonl"):
        rows = [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
        out[str(p.relative_to(run))] = [{k: v for k, v in r.items() if not TIMING_KEY.search(k)} for r in rows]
    return out


def assert_same_run(ref: Path, got: Path) -> None:
    import torch
    from safetensors.torch import load_file

    ref_w, got_w = final_weights(ref), final_weights(got)
    assert ref_w and sorted(ref_w) == sorted(got_w)
    for name in ref_w:
        a, b = load_file(str(ref_w[name])), load_file(str(got_w[name]))
        assert sorted(a) == sorted(b), name
        for k in a:
            assert torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-5), f"{name}: {k}"
    ref_m, got_m = metric_logs(ref), metric_logs(got)
    assert sorted(ref_m) == sorted(got_m)
    for name, rows in ref_m.items():
        assert [r.get("step") for r in got_m[name]] == [r.get("step") for r in rows], f"{name}: gaps or repeats"
        for r, g in zip(rows, got_m[name]):
            assert g == pytest.approx(r, rel=1e-4, abs=1e-5), name


@pytest.fixture(scope="module")
def reference(recipe_files, tmp_path_factory):
    """One uninterrupted run per stage, shared by every kill test of that stage."""
    done: dict[str, Path] = {}

    def get(stage: str) -> Path:
        if stage not in done:
            out = tmp_path_factory.mktemp(f"ref_{stage}") / "run"
            run_to_end(stage, recipe_files[stage], out)
            done[stage] = out
        return done[stage]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(STAGES))
def test_sigkill_anywhere_then_resume_equals_an_uninterrupted_run(stage, reference, recipe_files, tmp_path):
    from chatalign.training.checkpoint import latest_checkpoint

    ref = reference(stage)
    recipe = recipe_files[stage]
    ck_sub = STAGES[stage][1]
    n = max(steps(ref / ck_sub))
    assert n >= 3, f"{stage}: the tiny recipe needs at least 3 checkpoints to kill between, has {n}"
    rng = random.Random(f"kill-resume-{stage}")
    out = tmp_path / "run"
    ck = out / ck_sub
    points: list[str] = []

    # 1. at a seeded random point after checkpoint k: somewhere in the next steps or the next write
    k, delay = rng.randint(1, n - 2), rng.uniform(0, PAUSE)
    proc = launch(stage, recipe, out, False, tmp_path / "first.log")
    assert wait_for(lambda: k in steps(ck), proc), (tmp_path / "first.log").read_text()[-3000:]
    time.sleep(delay)
    during = writing(ck)
    kill(proc)
    points.append(f"after checkpoint {k} + {delay:.2f}s" + (" (inside a write)" if during else ""))
    before = steps(ck)
    assert before and max(before) < n, f"{stage}: killed too late ({before})"
    assert_loadable(latest_checkpoint(ck))
    assert not (out / "manifest.json").is_file() or json.loads((out / "manifest.json").read_text())["status"] != \
        "finished"

    # 2. inside the next checkpoint write (files under the temporary name, not yet renamed)
    proc = launch(stage, recipe, out, True, tmp_path / "second.log")
    assert wait_for(lambda: writing(ck), proc), (tmp_path / "second.log").read_text()[-3000:]
    tmp_state = [p for p in ck.glob(".tmp-*") if (p / ".writing").exists()]
    kill(proc)
    assert tmp_state, "the second kill was not inside a checkpoint write"
    points.append(f"inside the write of {tmp_state[0].name}")
    after = steps(ck)
    assert after == before or (after and min(after) >= min(before)), (before, after)
    assert_loadable(latest_checkpoint(ck))

    # 3. resume to the end
    run_to_end(stage, recipe, out, resume=True)
    assert json.loads((out / "manifest.json").read_text())["status"] == "finished"
    assert_same_run(ref, out)
    print(f"\nkill points {stage}: {len(points)}: {points}")


@pytest.mark.slow
@pytest.mark.parametrize("stage, sig", [("sft", signal.SIGINT), ("rlhf_ppo", signal.SIGTERM)])
def test_sigint_and_sigterm_checkpoint_and_exit_130_from_the_cli(stage, sig, recipe_files, tmp_path):
    """A polite stop from the shell: the step (PPO iteration) under way finishes, is checkpointed, exit 130
    with a --resume hint and no traceback."""
    from chatalign.training.checkpoint import latest_checkpoint

    out = tmp_path / "run"
    ck = out / STAGES[stage][1]
    proc = launch(stage, recipe_files[stage], out, False, tmp_path / "log")
    assert wait_for(lambda: 1 in steps(ck), proc), (tmp_path / "log").read_text()[-3000:]
    proc.send_signal(sig)
    proc.wait(timeout=120)
    log = (tmp_path / "log").read_text()
    assert proc.returncode == 130 and "Traceback" not in log, log[-3000:]
    assert "--resume" in log.strip().splitlines()[-1]
    logged = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    last = latest_checkpoint(ck)
    assert_loadable(last)
    assert int(last.name.split("-")[1]) == max(r["step"] for r in logged), "the last logged step has no checkpoint"

