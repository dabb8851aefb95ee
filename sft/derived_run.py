"""An SFT run inside another stage's run directory (GAtt, safety distillation): the config that trains on
that stage's rows with the loss on the last answer only, and the `model -> train/model` link."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from chatalign.errors import RunError
from chatalign.sft.config import SFTConfig, SFTData, SFTEval, SFTTrain


def last_turn_sft_config(cfg, run_path: Path, train_file: str,
                         truncation: Literal["truncate_right", "drop_oldest_turns"]) -> SFTConfig:
    """SFT on `run_path/data/<train_file>` into `run_path/train`, from a stage config with model, train, optim,
    lora, deepspeed, checkpoint and allow_changed_inputs."""
    t = cfg.train
    return SFTConfig(
        output_dir=str(run_path / "train"), model=cfg.model,
        data=SFTData(train=str(run_path / "data" / train_file)),
        train=SFTTrain(epochs=t.epochs, seq_len=t.seq_len, global_batch_rows=t.global_batch_rows,
                       micro_batch_rows=t.micro_batch_rows, max_steps=t.max_steps, seed=t.seed,
                       train_on="last_assistant", truncation=truncation),
        optim=cfg.optim, lora=cfg.lora, deepspeed=cfg.deepspeed, checkpoint=cfg.checkpoint,
        eval=SFTEval(compare_base=False), allow_changed_inputs=cfg.allow_changed_inputs)


def link_trained_model(run_path: Path) -> None:
    """model -> train/model (relative), so `model: <this run dir>` loads the trained model."""
    link = run_path / "model"
    if link.is_symlink() or link.exists():
        if link.is_symlink() and os.readlink(link) == os.path.join("train", "model"):
            return
        raise RunError(f"{link} exists and is not the link to train/model")
    os.symlink(os.path.join("train", "model"), link)
