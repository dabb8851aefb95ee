"""The PPO phase of a round: load the networks, run the trainer, write the policy as the round's model.

With `ppo.frozen_models: zero3` under several ranks the round's two reward models are partitioned in place for
PPO (before the PPO networks load, so that whole copies and partitions never add up) and reloaded whole
afterwards on rank 0 for the round's evaluation, which rank 0 runs alone."""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

DONE = "ppo_done.json"


def value_init_path(cfg) -> str:
    """The reward model the value model starts from: `helpful`, `safety`, or a path (cwd-relative)."""
    from chatalign.rlhf.lineage import resolve_run_path

    init = cfg.ppo.value.init
    if init == "helpful":
        return resolve_run_path(cfg.reward.helpful)
    if init == "safety":
        return resolve_run_path(cfg.reward.safety)
    return resolve_run_path(init)


def run_ppo_phase(ctx, model_path: str, target: Path, resume: bool) -> dict:
    """Train from `model_path`; write the final (or best evaluated) policy to `target`; return the summary."""
    from chatalign.rlhf.ppo.frozen import frozen_zero3, shard_reward_models
    from chatalign.rlhf.ppo.models import load_models
    from chatalign.rlhf.ppo.sampler import ppo_generator
    from chatalign.rlhf.ppo.trainer import PPOTrainer
    from chatalign.runs import write_json_atomic
    from chatalign.training.distributed import DistContext

    work = ctx.run.path / "ppo"
    done = work / DONE
    if done.is_file() and (target / "config.json").is_file():
        log.info("PPO: already finished, reusing %s", target)
        return json.loads(done.read_text(encoding="utf-8"))
    cfg = ctx.cfg
    m = cfg.model
    dist = DistContext.from_env(cfg.distributed.timeout_minutes)
    reward_fn = ctx.reward_fn
    if frozen_zero3(cfg.ppo, dist):  # before the PPO networks load: the whole RM copies are freed first
        reward_fn = shard_reward_models(ctx.reward_fn, dist)
    models = load_models(model_path, value_init_path(cfg), dtype=m.dtype, lora=cfg.ppo.lora, seed=cfg.ppo.seed,
                         value_trainable_layers=cfg.ppo.value.trainable_layers,
                         trust_remote_code=m.trust_remote_code, attn_implementation=m.attn_implementation,
                         chat_template=m.chat_template, gradient_checkpointing=m.gradient_checkpointing)
    heldout = ctx.heldout[:cfg.ppo.early_stopping.max_prompts]  # None: all of them
    generator = ppo_generator(models, cfg.generation, model_path, m, dist)
    trainer = PPOTrainer(models, ctx.prompts, reward_fn, cfg.ppo, ctx.run, work, heldout=heldout,
                         progress=ctx.progress, on_iteration=getattr(ctx, "on_ppo_iteration", None), dist=dist,
                         generator=generator)
    summary = trainer.train(resume=resume)
    best = trainer.restore_best()
    summary["ppo_model_iteration"] = best if best is not None else summary["ppo_iterations"]
    trainer.export(target)  # a whole HF model, gathered from the ZeRO shards under several ranks
    trainer.close()
    generator.close()
    if dist.is_main:
        write_json_atomic(done, summary)
    dist.barrier()
    if reward_fn is not ctx.reward_fn:
        del trainer, reward_fn, models
        ctx.reward_fn = whole_reward_models(ctx, dist)
    return summary


def whole_reward_models(ctx, dist):
    """The round's reward models after PPO partitioned them in place: reloaded whole on rank 0, which alone
    evaluates the round (the other ranks keep none)."""
    import gc

    import torch

    from chatalign.rlhf.reward_fn import load_reward_fn

    gc.collect()  # DeepSpeed engines hold reference cycles: free the partitions before loading whole copies
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if not dist.is_main or not ctx.heldout:
        return None
    return load_reward_fn(ctx.cfg)
