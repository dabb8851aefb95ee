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
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import ENV, STAGES, assert_loadable, assert_same_run, command, run_to_end

PAUSE = 0.4  # seconds each checkpoint write sleeps in the killed runs


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

