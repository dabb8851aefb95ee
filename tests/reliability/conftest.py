"""Tiny stage recipes for the reliability tests: every stage's CLI on tiny random models and the bundled
quickstart data (a few rows each), written once per session; `assert_loadable`, the check that a
checkpoint reads back, shared by the kill/resume and the numerical-fault tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
QS = ROOT / "data" / "quickstart"
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
}


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
