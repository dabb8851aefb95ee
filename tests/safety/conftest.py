"""The safety stage's tiny config (a tiny policy and RM on the bundled data), shared by the safety tests."""

from __future__ import annotations

from chatalign.safety.config import SafetyConfig
from chatalign.safety.taxonomy import BUNDLED_DATA, BUNDLED_TEMPLATES


def tiny_config(tmp_path, policy, rm, **distill) -> SafetyConfig:
    return SafetyConfig.model_validate({
        "output_dir": str(tmp_path / "run"),
        "model": {"name": str(policy), "dtype": "float32"},
        "safety_rm": {"name": str(rm), "dtype": "float32", "batch_tokens": 1024},
        "distill": {"prompts": [str(BUNDLED_DATA / "safety_adversarial_train.jsonl")],
                    "templates": str(BUNDLED_TEMPLATES), "max_prompts": 9, "max_new_tokens": 6,
                    "temperature": 1.0, "top_p": 1.0, "batch_size": 18, "unfinished": "keep", "seed": 0,
                    **distill},
        "train": {"epochs": 1, "seq_len": 512, "global_batch_rows": 1, "seed": 0},
        "optim": {"lr": 1e-3},
        "checkpoint": {"every_steps": 50, "keep_last": 1},
        "eval": {"adversarial": str(BUNDLED_DATA / "safety_adversarial_heldout.jsonl"),
                 "helpful": str(BUNDLED_DATA / "helpful_eval.jsonl"),
                 "borderline": str(BUNDLED_DATA / "safety_borderline.jsonl"),
                 "max_prompts": 4, "max_new_tokens": 6, "batch_size": 12, "threshold": 0.5},
    })
