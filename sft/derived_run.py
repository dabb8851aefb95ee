"""An SFT run inside another stage's run directory (GAtt, safety distillation): the config that trains on
that stage's rows with the loss on the last answer only, the `model -> train/model` link, and the life of
such a stage's run that GAtt and safety share (`run_derived_stage`: launcher check, claiming the run
directory, the train step on every rank, the evaluation and the summary on rank 0)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from chatalign.errors import ConfigError, RunError
from chatalign.sft.config import SFTConfig, SFTData, SFTEval, SFTTrain
from chatalign.tracking.config import inner_tracking

log = logging.getLogger(__name__)


def last_turn_sft_config(cfg, run_path: Path, train_file: str,
                         truncation: Literal["truncate_right", "drop_oldest_turns"]) -> SFTConfig:
    """SFT on `run_path/data/<train_file>` (and the stage's `replay` files beside it) into `run_path/train`, from a
    stage config with model, train, optim, lora, deepspeed, distributed, checkpoint, replay and
    allow_changed_inputs."""
    t = cfg.train
    return SFTConfig(
        output_dir=str(run_path / "train"), model=cfg.model,
        data=SFTData(train=str(run_path / "data" / train_file), extra=list(cfg.replay)),
        train=SFTTrain(epochs=t.epochs, seq_len=t.seq_len, global_batch_rows=t.global_batch_rows,
                       micro_batch_rows=t.micro_batch_rows, max_steps=t.max_steps, seed=t.seed,
                       trainable_layers=t.trainable_layers,
                       train_on="last_assistant", truncation=truncation),
        optim=cfg.optim, lora=cfg.lora, deepspeed=cfg.deepspeed, distributed=cfg.distributed, checkpoint=cfg.checkpoint,
        eval=SFTEval(compare_base=False), allow_changed_inputs=cfg.allow_changed_inputs,
        **inner_tracking(cfg, cfg.output_dir, "train"))


def check_replay(cfg) -> dict[str, int]:
    """The `replay` files load (a malformed row names file, line and field): rows read from each."""
    from chatalign.sft.data import load_conversations

    return {f"{source.path}" + (f" tags={source.tags}" if source.tags else ""):
            len(load_conversations(source.path, "auto", "raise", None, source.max_rows, source.tags)[0])
            for source in cfg.replay}


def link_trained_model(run_path: Path) -> None:
    """model -> train/model (relative), so `model: <this run dir>` loads the trained model."""
    link = run_path / "model"
    if link.is_symlink() or link.exists():
        if link.is_symlink() and os.readlink(link) == os.path.join("train", "model"):
            return
        raise RunError(f"{link} exists and is not the link to train/model")
    os.symlink(os.path.join("train", "model"), link)


def single_process_rank(steps, command: str, first_step: str, first_step_noun: str) -> int:
    """This process's rank; under a multi-rank launcher only `steps=[train]` may run (the stage's generation and
    evaluation run in one process)."""
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    if world > 1 and set(steps) != {"train"}:
        raise ConfigError(f"under torchrun only `steps=[train]` runs ({first_step_noun} and evaluation are "
                          f"single-process): run `chatalign {command} ... steps=[{first_step},evaluate_before]` "
                          "first, then the torchrun command with steps=[train] --resume, then "
                          "steps=[evaluate_after] --resume")
    return rank


def claim_run_dir(run, resume: bool, what: str, prepare: Callable[[], object]) -> None:
    """Refuse a finished run directory, or an unfinished one without --resume; check the config's data and
    inputs (`prepare`) before a fresh run writes anything; lock the directory."""
    if run.is_finished() and not resume:
        raise RunError(f"{run.path} already holds a finished {what} run; choose another output_dir")
    if run.manifest_path.is_file() and not resume:
        raise RunError(f"{run.path} holds an unfinished {what} run: add --resume to continue it, "
                       "or choose another output_dir")
    if not resume:
        prepare()
    run.lock()


def train_step(run_path: Path, train_run, sft_cfg: SFTConfig, first_step: str, resume: bool, progress: bool,
               main: bool) -> None:
    """The SFT run on the stage's rows (resumed from its last checkpoint where there is one), then the
    `model -> train/model` link on rank 0."""
    data_file = Path(sft_cfg.data.train)
    if not data_file.is_file():
        raise RunError(f"no {data_file}: run the {first_step} step first")
    if train_run.is_finished():
        log.info("training already finished in %s", train_run.path)
    else:
        from chatalign.sft.run import run_sft

        has_ckpt = train_run.checkpoints.is_dir() and any(train_run.checkpoints.iterdir())
        run_sft(sft_cfg, resume=resume and has_ckpt, progress=progress)
    if main:
        link_trained_model(run_path)


def after_eval_due(steps, has_eval_data: bool, result_file: Path, train_run) -> bool:
    """Whether the evaluation of the trained model is asked for (`evaluate_after` in `steps`, with data) and
    not done yet (`result_file` absent); raises RunError when it is due but training has not finished."""
    if "evaluate_after" not in steps or not has_eval_data or result_file.is_file():
        return False
    if not train_run.is_finished():
        raise RunError(f"no finished training in {train_run.path}: run the train step first")
    return True


def finished_train_metrics(train_run) -> dict | None:
    """The metrics of the stage's SFT run once it has finished, else None."""
    manifest = train_run.read_manifest()
    if manifest and manifest.get("status") == "finished":
        return manifest.get("metrics", {})
    return None


def record_progress(run, summary: dict, lineage: dict, steps_done: dict[str, bool], finished: bool) -> dict:
    """Finish the run when every step it needs is done (`finished`), else record the steps done so far in its
    manifest (a split multi-GPU run finishes in a later invocation); `summary` gains status finished / partial."""
    if finished:
        run.finish(summary, extra={"lineage": lineage})
    else:
        from chatalign.runs import write_json_atomic

        manifest = run.read_manifest() or {}
        manifest.update({"metrics": summary, "lineage": lineage,
                         "steps_done": [step for step, ok in steps_done.items() if ok]})
        write_json_atomic(run.manifest_path, manifest)
    summary["status"] = "finished" if finished else "partial"
    return summary


@dataclass
class DerivedStage:
    """What a stage that fine-tunes on rows it generated itself (GAtt, safety) plugs into `run_derived_stage`."""

    command: str  # its CLI word, for the torchrun hint
    what: str  # its name in messages
    first_step: str  # the step that writes the training rows
    first_step_noun: str
    prepare: Callable[[], object]  # the dry-run checks, before a fresh run writes anything
    start: Callable[[], None]  # rank 0: the manifest, then the single-process steps (generation, evaluation)
    sft_config: Callable[[], SFTConfig]
    evaluate_after: Callable[[], None]  # rank 0, after training: the trained model's evaluation, where due
    summarize: Callable[[], dict]  # rank 0: the report and the manifest's metrics


def run_derived_stage(stage: DerivedStage, run, train_run, steps, resume: bool, progress: bool) -> dict:
    """Run the parts of `stage` that `steps` names; under torchrun only the train step runs (on every rank).
    The run directory's lock is released however the run ends. Returns the summary ({} off rank 0)."""
    main = single_process_rank(steps, stage.command, stage.first_step, stage.first_step_noun) == 0
    if main:
        claim_run_dir(run, resume, stage.what, stage.prepare)
    try:
        if main:
            stage.start()
        if "train" in steps:
            train_step(run.path, train_run, stage.sft_config(), stage.first_step, resume, progress, main)
        if not main:
            return {}
        stage.evaluate_after()
        return stage.summarize()
    finally:
        if main:
            run.unlock()
