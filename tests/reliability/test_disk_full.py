"""A full disk at every write path of a stage outside its checkpoints' own files: the manifest, the metrics log,
a checkpoint, the final model, the report and its plots. `CHATALIGN_FAULT_ENOSPC_AT=TEXT`
makes every write whose final path contains TEXT fail with ENOSPC (chatalign.runs.fault_disk_full), as a full
disk would. The run must stop with one line (exit 4, no traceback), leave no half-written file and no file it
had before damaged, and `--resume` once space is back must finish it with the same weights and metrics as a run
that never failed."""

from __future__ import annotations

import json
import subprocess

import pytest

from .conftest import ENV, assert_same_run, command, run_to_end

# where a write fails: text of its final path -> what it is
POINTS = {
    "manifest.json": "the manifest (first written when the run starts)",
    "metrics.jsonl": "the metrics log (first step)",
    "checkpoints/step-0000002": "the second checkpoint",
    "run/model": "the final model",
    "report.md": "the report",
    ".png": "the plots",
}
# the stages that generate before they train: their own data files, and the shared writers at other points
STAGE_POINTS = {
    "rlhf_rs": {"samples.jsonl": "the sampled answers (appended chunk by chunk)",
                "selected.jsonl": "the selected best answers",
                "rs_sft/checkpoints/step-0000002": "the fine-tune's second checkpoint",
                "report.md": "the round's report"},
    "rlhf_ppo": {"manifest.json": "the manifest",
                 "ppo/checkpoints/step-0000002": "the second PPO checkpoint (policy, value, optimizers)",
                 "ppo/best": "the best evaluated policy",
                 "run/model": "the exported policy"},
    "gatt": {"gatt_samples.jsonl": "the synthesized dialogues",
             "gatt_train.jsonl": "the training rows",
             "train/checkpoints/step-0000002": "the second checkpoint",
             ".png": "the plots"},
    "dpo": {"reference_logps.safetensors": "the reference log-probs",
            "checkpoints/step-0000002": "the second checkpoint",
            "run/model": "the final model",
            "report.md": "the report"},
    "safety": {"distill_candidates.jsonl": "the distillation candidates",
               "distill_train.jsonl": "the kept distillation rows",
               "metrics.jsonl": "the metrics log",
               "report.md": "the report"},
}
CASES = [(stage, point) for stage in ("sft", "reward") for point in POINTS] + [
    (stage, point) for stage, points in STAGE_POINTS.items() for point in points]
WHAT = {**POINTS, **{p: w for points in STAGE_POINTS.values() for p, w in points.items()}}


def half_written(out) -> list[str]:
    """Temporary files of an atomic write left behind (names start with a dot, see write_text_atomic)."""
    return [str(p) for p in out.rglob(".*") if p.is_file() and not p.name.startswith((".lock", ".writing"))]


@pytest.mark.slow
@pytest.mark.parametrize("stage, point", CASES)
def test_disk_full_stops_in_one_line_and_resume_finishes_the_same_run(stage, point, recipe_files, reference,
                                                                       tmp_path):
    out = tmp_path / "run"
    failed = subprocess.run(command(stage, recipe_files[stage], out, False), capture_output=True, text=True,
                            env={**ENV, "CHATALIGN_FAULT_ENOSPC_AT": point}, timeout=300)
    err = failed.stderr
    assert failed.returncode == 4, f"{WHAT[point]}: {err[-3000:]}"
    assert "Traceback" not in err and "chatalign: error:" in err and "o space left" in err
    assert point in err.strip().splitlines()[-1]
    assert not half_written(out), half_written(out)
    manifest = out / "manifest.json"
    if manifest.exists():
        assert json.loads(manifest.read_text())["status"] != "finished", f"{WHAT[point]}: marked finished"
    resumed = run_to_end(stage, recipe_files[stage], out, resume=True)
    assert "Traceback" not in resumed.stderr
    assert json.loads(manifest.read_text())["status"] == "finished"
    assert (out / "report.md").is_file() and list(out.glob("*.png"))
    assert_same_run(reference(stage), out)
