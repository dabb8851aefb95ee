"""Tiny stage recipes for the reliability tests: every stage's CLI on tiny random models and the bundled
quickstart data (a few rows each), written once per session; the helpers the kill/resume, disk-full and
numerical-fault tests share: a stage's command line, a run to its end, the comparison of two finished runs
(weights and logged metrics) and `assert_loadable`, the check that a checkpoint reads back."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
QS = ROOT / "data" / "quickstart"
TIMING_KEY = re.compile(r"per_s|time|seconds|cpu|mem|elapsed|eta", re.I)  # left out of metric comparisons
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
       "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

# stage name -> (CLI words, where its training checkpoints go inside the run directory)
STAGES = {
    "sft": (["sft"], "checkpoints"),
    "reward": (["reward"], "checkpoints"),
    "rlhf_rs": (["rlhf", "rs"], "rs_sft/checkpoints"),
    "rlhf_ppo": (["rlhf", "ppo"], "ppo/checkpoints"),
    "gatt": (["gatt"], "train/checkpoints"),
    "safety": (["safety"], "train/checkpoints"),
    "dpo": (["dpo"], "checkpoints"),
}


def command(stage: str, recipe: Path, out: Path, resume: bool) -> list[str]:
    words, _ = STAGES[stage]
    return [sys.executable, "-m", "chatalign.cli", *words, "--config", str(recipe), "--no-progress",
            f"output_dir={out}", *(["--resume"] if resume else [])]


def run_to_end(stage, recipe, out, resume=False):
    r = subprocess.run(command(stage, recipe, out, resume), capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


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
    """One uninterrupted run per stage, shared by the tests of a module that compare a faulted run with it."""
    done: dict[str, Path] = {}

    def get(stage: str) -> Path:
        if stage not in done:
            out = tmp_path_factory.mktemp(f"ref_{stage}") / "run"
            run_to_end(stage, recipe_files[stage], out)
            done[stage] = out
        return done[stage]

    return get


def assert_loadable(ck_dir: Path) -> None:
    """Every file of a checkpoint reads back: JSON state, safetensors weights, tensor-only torch files."""
    import torch
    from safetensors.torch import load_file

    assert ck_dir is not None and (ck_dir / "state.json").is_file(), ck_dir
    json.loads((ck_dir / "state.json").read_text())
    files = [p for p in ck_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in files), files
    for p in files:
        if p.suffix == ".safetensors":
            assert load_file(str(p))
        elif p.suffix == ".pt":
            torch.load(p, weights_only=True)


def stage_recipes(d: Path, model: Path, rm: Path) -> dict[str, dict]:
    m = {"name": str(model), "dtype": "float32"}
    rl_common = {"stage": "rlhf", "start": str(model), "model": {"dtype": "float32"},
                 "reward": {"helpful": str(rm), "safety": str(rm)},
                 "data": {"prompts": str(QS / "prompts_train.jsonl"), "heldout": str(QS / "prompts_heldout.jsonl"),
                          "max_prompts": 4, "max_heldout": 2},
                 "eval": {"max_new_tokens": 4, "batch_size": 4}}
    return {
        "sft": {"stage": "sft", "model": m,
                "data": {"train": str(QS / "sft_train.jsonl"), "max_rows": 12},
                "train": {"epochs": 1, "seq_len": 128, "global_batch_rows": 1, "seed": 0}, "optim": {"lr": 1e-3},
                "checkpoint": {"every_steps": 1, "keep_last": 2}, "eval": {"max_prompts": 0}},
        "reward": {"stage": "reward", "kind": "helpfulness", "model": m,
                   "data": {"sources": [{"path": str(QS / "pref_helpful_train.jsonl"), "name": "h"}], "total": 16},
                   "train": {"global_batch_pairs": 2, "max_seq_len": 128, "row_tokens": 256, "epochs": 1, "seed": 0},
                   "optim": {"lr": 1e-3, "warmup_ratio": 0.0}, "checkpoint": {"every_steps": 1, "keep_last": 2},
                   "eval": {"max_pairs": 4, "batch_tokens": 1024}},
        "dpo": {"stage": "dpo", "model": m,
                "data": {"sources": [{"path": str(QS / "pref_helpful_train.jsonl"), "name": "h"}], "total": 12,
                         "eval": [{"path": str(QS / "pref_helpful_heldout.jsonl"), "name": "h"}]},
                "train": {"global_batch_pairs": 2, "max_seq_len": 128, "row_tokens": 256, "epochs": 1, "seed": 0},
                "optim": {"lr": 1e-3, "warmup_ratio": 0.0}, "checkpoint": {"every_steps": 1, "keep_last": 2},
                "eval": {"batch_tokens": 1024, "max_pairs": 4}},
        "rlhf_rs": {**rl_common, "mode": "rs",
                    "rs": {"num_samples": 2, "max_new_tokens": 6, "skip_unfinished": False, "batch_size": 8,
                           "chunk_prompts": 4, "sweep_temperatures": [],
                           "train": {"seq_len": 48, "global_batch_rows": 1, "epochs": 1}, "optim": {"lr": 1e-3},
                           "checkpoint": {"every_steps": 1, "keep_last": 2}}},
        "rlhf_ppo": {**rl_common, "mode": "ppo",
                     "ppo": {"iterations": 6, "batch_prompts": 4, "minibatch": 2, "max_new_tokens": 6,
                             "gen_batch_size": 4, "score_batch_size": 4, "optim": {"lr": 1e-3},
                             "early_stopping": {"eval_every": 3}, "checkpoint_every": 1, "keep_checkpoints": 2}},
        "gatt": {"stage": "gatt", "model": m,
                 "instructions": {"constraints": str(QS / "gatt_constraints.yaml"), "seed": 0},
                 "synthesis": {"dialogues": [str(QS / "gatt_dialogues.jsonl")], "max_dialogues": 4, "max_turns": 2,
                               "reject_failing": False, "unfinished": "keep", "max_new_tokens": 6, "batch_size": 4,
                               "min_turn": 1},
                 "train": {"epochs": 1, "seq_len": 64, "global_batch_rows": 1, "seed": 0}, "optim": {"lr": 1e-3},
                 "checkpoint": {"every_steps": 1, "keep_last": 2},
                 "eval": {"data": str(QS / "gatt_dialogues_heldout.jsonl"), "n_dialogues": 1, "n_long": 0,
                          "turns": [2], "max_new_tokens": 4, "batch_size": 4}},
        "safety": {"stage": "safety", "model": m, "safety_rm": {"name": str(rm), "dtype": "float32",
                                                                "batch_tokens": 1024},
                   "distill": {"prompts": [str(QS / "safety_adversarial_train.jsonl")],
                               "templates": str(QS / "safety_templates.yaml"), "max_prompts": 10,
                               "max_new_tokens": 6, "temperature": 1.0, "top_p": 1.0, "batch_size": 8,
                               "unfinished": "keep", "seed": 0},
                   "train": {"epochs": 1, "seq_len": 80, "global_batch_rows": 1, "seed": 0}, "optim": {"lr": 1e-3},
                   "checkpoint": {"every_steps": 1, "keep_last": 2},
                   "eval": {"adversarial": str(QS / "safety_adversarial_heldout.jsonl"),
                            "helpful": str(QS / "helpful_eval.jsonl"), "borderline": str(QS / "safety_borderline.jsonl"),
                            "max_prompts": 1, "max_new_tokens": 4, "batch_size": 8, "threshold": 0.5}},
    }


@pytest.fixture(scope="session")
def recipe_files(tmp_path_factory, tiny_model_dir, tiny_rm_dir) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("rel_recipes")
    out = {}
    for name, body in stage_recipes(d, tiny_model_dir, tiny_rm_dir).items():
        out[name] = d / f"{name}.yaml"
        out[name].write_text(yaml.safe_dump(body, sort_keys=False))
    return out


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread(one_torch_thread_session):
    """Every test of this folder on one torch thread (tests/conftest.py says why)."""
