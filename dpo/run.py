"""`chatalign dpo`: Direct Preference Optimization of a chat model into a run directory.

Order of work: read and check the preference files, draw the mix, encode and plan (bad data fails here,
leaving no run directory); load the starting model; compute (or, on --resume, read back) the reference
log-probs of every training and held-out pair; then LoRA or layer freezing; train through the shared loop
(checkpoints, resume, DeepSpeed ZeRO); write `model/` (HF causal LM, safetensors); rank 0 reloads it and
measures the held-out implicit-reward accuracy; report.md and the manifest.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from chatalign.dpo.config import DPOConfig

log = logging.getLogger(__name__)


def run_dpo(cfg: DPOConfig, resume: bool = False, progress: bool = True) -> dict:
    from chatalign.dpo.data import prepare
    from chatalign.runs import RunDir
    from chatalign.sft.derived_run import claim_run_dir
    from chatalign.training.distributed import DistContext

    dist = DistContext.from_env(cfg.distributed.timeout_minutes)
    run = RunDir(cfg.output_dir, "dpo")
    checked: list = []  # a fresh run checks its data before it writes anything: bad data leaves no directory
    if dist.is_main:
        claim_run_dir(run, resume, "DPO", lambda: checked.append(prepare(cfg)))
    try:  # the lock is released however the run ends (a pipeline runs stages in one process)
        return train_evaluate_report(cfg, checked[0] if checked else prepare(cfg), run, dist, resume, progress)
    finally:
        run.unlock()


def load_policy(cfg: DPOConfig, dist):
    import torch

    from chatalign.models import load_causal_lm
    from chatalign.training.lora import quantization_kwargs
    from chatalign.training.placement import place_for_training

    model = load_causal_lm(cfg.model.name, cfg.model.dtype, cfg.model.trust_remote_code,
                           cfg.model.attn_implementation, **quantization_kwargs(cfg.lora, cfg.model.dtype))
    model.config.use_cache = False
    for module in model.modules():  # the policy's log-probs must be the reference's function, not a noisy draw
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "attention_dropout", None), float):  # Llama-style attention dropout
            module.attention_dropout = 0.0
    # on the GPU before DeepSpeed wraps it (its reference copy is taken from the placed model)
    place_for_training(model, dist, quantized=cfg.lora.quantize != "none", engine_places=False)
    return model


def make_trainable(model, cfg: DPOConfig):
    """The model to train (LoRA-wrapped, or with frozen lower layers) and which parameters a checkpoint keeps."""
    if cfg.model.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.lora.enabled:
        import torch

        from chatalign.seeding import drawing_from
        from chatalign.training.lora import apply_lora

        with drawing_from(torch.Generator().manual_seed(cfg.train.seed)):  # the same adapters on every rank and run
            model = apply_lora(model, cfg.lora, "CAUSAL_LM", cfg.model.gradient_checkpointing)
        return model, (lambda n: "lora_" in n)
    if cfg.train.trainable_layers:
        from chatalign.dpo.model import freeze_lower_layers

        trained = {f"model.{n}" for n in freeze_lower_layers(model, cfg.train.trainable_layers)}
        return model, trained.__contains__
    return model, None


def train_evaluate_report(cfg: DPOConfig, prep, run, dist, resume: bool, progress: bool) -> dict:
    from chatalign.dpo.model import PackedDPOLoss, train_metrics
    from chatalign.dpo.pairs import collate_dpo
    from chatalign.dpo.reference import attach_reference
    from chatalign.training.loop import TrainJob, build_backend, train

    inputs = {f"train:{s.label}": s.path for s in cfg.data.sources} | {f"eval:{s.label}": s.path
                                                                        for s in cfg.data.eval}
    if dist.is_main:
        start = Path(cfg.model.name)
        run.start(cfg.model_dump(mode="json"), inputs, parents=[str(start.resolve())] if start.exists() else [],
                  resume=resume, allow_changed_inputs=cfg.allow_changed_inputs)
        log.info("data: %s", json.dumps(prep.stats))
    model = load_policy(cfg, dist)
    t0 = time.perf_counter()
    computed = attach_reference(run.path, model, cfg.model.name,
                                {"train": prep.pairs, **{f"eval/{k}": v for k, v in prep.eval_sets.items()}},
                                cfg.eval.batch_tokens, dist)
    ref_s = time.perf_counter() - t0
    model, keep = make_trainable(model, cfg)
    job = TrainJob(loss_module=PackedDPOLoss(model, cfg.dpo.beta), items=prep.rows,
                   weights=[len(r.pairs) for r in prep.rows], collate=collate_dpo, plan=prep.plan,
                   micro_batch_items=cfg.train.micro_batch_rows, unit="pairs", extra_metrics=train_metrics,
                   trainable_filter=keep)
    t0 = time.perf_counter()
    backend = build_backend(job, cfg.optim, cfg.deepspeed, dist)
    last = train(job, cfg.optim, cfg.checkpoint, cfg.deepspeed, run, dist, resume, progress, desc="dpo",
                 backend=backend)
    train_s = time.perf_counter() - t0
    finalize_model(model, prep.tokenizer, run, dist, cfg)
    backend.close()
    del job, model, backend
    summary = {"steps": len(prep.plan), "pairs": prep.stats["pairs"], "beta": cfg.dpo.beta,
               "final_loss": last.get("loss"), "final_train_accuracy": last.get("accuracy"),
               "final_reward_margin": last.get("reward_margin"), "pairs_per_s": last.get("pairs_per_s"),
               "reference_seconds": round(ref_s, 1) if computed else 0.0,
               "train_seconds_this_process": round(train_s, 1)}
    if dist.is_main:
        evaluate_and_report(cfg, run, prep, summary)
    dist.barrier()
    return summary


def evaluate_and_report(cfg: DPOConfig, run, prep, summary: dict) -> None:
    import gc

    from chatalign.dpo.evaluate import eval_summary, evaluate_model
    from chatalign.dpo.report import write_report

    gc.collect()  # the evaluation loads model/ afresh: free the training copy first
    evaluation = evaluate_model(run.model_dir, cfg, prep.eval_sets, prep.eval_excluded)
    if evaluation:
        from chatalign.reward.eval_report import write_eval_files

        summary.update(eval_summary(evaluation))
        write_eval_files(evaluation, run.path, "DPO implicit reward")
    from chatalign.dpo.data import INDEPENDENT_SUITES
    from chatalign.evaluation.stage_hook import run_independent

    run_independent(cfg.independent, run.path, str(run.model_dir), cfg.model.name, INDEPENDENT_SUITES)
    write_report(run, cfg, prep.stats, summary, evaluation)
    run.finish(summary, {"data": prep.stats}, adapter_only=cfg.lora.adapter_only)


def finalize_model(model, tokenizer, run, dist, cfg: DPOConfig) -> None:
    """Write `model/` (HF causal LM, safetensors): LoRA merged (and `adapter/` with `lora.save: both`; QLoRA and
    ZeRO-3 merged into the full-precision base), ZeRO-3 shards gathered."""
    from chatalign.models import load_causal_lm, save_hf_atomic

    state = None
    if any(hasattr(p, "ds_id") for p in model.parameters()):
        from chatalign.training.zero_gather import gather_full_state

        state = gather_full_state(model)  # a collective: every rank
    if cfg.lora.enabled:
        from chatalign.training.lora import finish_lora

        m = cfg.model
        model = finish_lora(model, cfg.lora, run.path, dist.is_main, lambda: load_causal_lm(
            m.name, m.dtype, m.trust_remote_code, m.attn_implementation), state)
        state = None
    if dist.is_main:
        save_hf_atomic(model, tokenizer, run.model_dir, state_dict=state)
    dist.barrier()