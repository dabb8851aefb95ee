"""`chatalign sft`: prompt-masked, packed supervised fine-tuning into a run directory."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from chatalign.errors import RunError
from chatalign.sft.config import SFTConfig

log = logging.getLogger(__name__)


def prepare(cfg: SFTConfig):
    """Everything before the model: data validated and tokenized (what --dry-run checks)."""
    from chatalign.models import load_tokenizer
    from chatalign.sft.data import encode_conversations, load_conversations
    from chatalign.text.templates import apply_named_template

    convs, skipped = load_conversations(cfg.data.train, cfg.data.format, cfg.data.on_error, cfg.data.quarantine,
                                        cfg.data.max_rows)
    tok = load_tokenizer(cfg.model.name, cfg.model.trust_remote_code)
    apply_named_template(tok, cfg.model.chat_template)
    enc = encode_conversations(tok, convs, cfg.train.seq_len, cfg.train.train_on, cfg.train.truncation)
    enc.stats["skipped_rows"] = skipped
    if cfg.data.eval:
        from chatalign.sft.evaluate import load_heldout

        enc.stats["eval_prompts"] = len(load_heldout(cfg.data.eval, cfg.eval.max_prompts))
    return tok, enc


def apply_lora(model, cfg: SFTConfig):
    from peft import LoraConfig, get_peft_model

    lcfg = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")
    return get_peft_model(model, lcfg)


def run_sft(cfg: SFTConfig, resume: bool = False, progress: bool = True) -> dict:
    from chatalign.runs import RunDir

    run = RunDir(cfg.output_dir, "sft")
    try:
        return _run_sft(cfg, run, resume, progress)
    finally:
        run.unlock()  # also on errors: a pipeline running stages in one process must not keep the lock


def _run_sft(cfg: SFTConfig, run, resume: bool, progress: bool) -> dict:
    from chatalign.models import load_causal_lm
    from chatalign.text.packing import collate_rows, pack_examples, step_plan
    from chatalign.training.distributed import DistContext
    from chatalign.training.lm_loss import PackedLMLoss
    from chatalign.training.loop import TrainJob, train

    dist = DistContext.from_env()
    if dist.is_main:
        if run.is_finished() and not resume:
            raise RunError(f"{run.path} already holds a finished SFT run; choose another output_dir")
        if not resume and run.checkpoints.is_dir() and any(run.checkpoints.iterdir()):
            raise RunError(f"{run.path} holds checkpoints of an unfinished run: add --resume to continue it, "
                           "or choose another output_dir")
    # the data is checked before the run directory is made or locked: bad data leaves nothing behind
    tok, enc = prepare(cfg)
    if dist.is_main:
        run.lock()
        run.start(cfg.model_dump(mode="json"), {"train": cfg.data.train, "eval": cfg.data.eval},
                  parents=[str(Path(cfg.model.name).resolve())] if Path(cfg.model.name).exists() else [],
                  resume=resume, allow_changed_inputs=cfg.allow_changed_inputs)
        log.info("data: %s", json.dumps(enc.stats))
    model = load_causal_lm(cfg.model.name, cfg.model.dtype, cfg.model.trust_remote_code,
                           cfg.model.attn_implementation)
    model.config.use_cache = False
    if cfg.model.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    base_eval = None
    heldout = None
    if cfg.data.eval and dist.world_size == 1:
        from chatalign.sft.evaluate import evaluate_model, load_heldout

        heldout = load_heldout(cfg.data.eval, cfg.eval.max_prompts)
        base_file = run.path / "eval_base.json"
        if cfg.eval.compare_base:
            if base_file.is_file():
                base_eval = json.loads(base_file.read_text())
            else:
                log.info("evaluating the starting model on %d held-out prompts", len(heldout))
                base_eval = evaluate_model(model, tok, heldout, cfg.eval.max_new_tokens, cfg.eval.batch_size)
                base_file.write_text(json.dumps(base_eval, indent=1))
    if cfg.lora.enabled:
        model = apply_lora(model, cfg)
    rows = pack_examples(enc.examples, cfg.train.seq_len)
    plan = step_plan(len(rows), cfg.train.global_batch_rows, cfg.train.epochs, cfg.train.seed)
    if cfg.train.max_steps:
        plan = plan[:cfg.train.max_steps]
    job = TrainJob(
        loss_module=PackedLMLoss(model), items=rows, weights=[r.n_trained for r in rows], collate=collate_rows,
        plan=plan, micro_batch_items=cfg.train.micro_batch_rows, unit="tok",
        trainable_filter=(lambda n: "lora_" in n) if cfg.lora.enabled else None)
    t0 = time.perf_counter()
    last = train(job, cfg.optim, cfg.checkpoint, cfg.deepspeed, run, dist, resume, progress, desc="sft")
    train_s = time.perf_counter() - t0
    final = finalize_model(job, model, tok, run, dist, cfg.lora.enabled)
    summary = {"steps": len(plan), "packed_rows": len(rows), "final_loss": last.get("loss"),
               "train_seconds_this_process": round(train_s, 1), **{f"data_{k}": v for k, v in enc.stats.items()}}
    if dist.is_main:
        if heldout is not None:
            tuned_eval = evaluate_model(final, tok, heldout, cfg.eval.max_new_tokens, cfg.eval.batch_size)
            (run.path / "eval_final.json").write_text(json.dumps(tuned_eval, indent=1))
            summary.update(eval_summary(base_eval, tuned_eval))
        from chatalign.sft.report import write_report

        write_report(run, cfg, summary)
        run.finish(summary)
    dist.barrier()
    return summary


def finalize_model(job, model, tok, run, dist, lora: bool):
    """Write `model/` (HF format, safetensors): LoRA merged, ZeRO-3 shards gathered on rank 0."""
    from chatalign.models import save_hf_atomic

    engine = getattr(job, "engine", None)
    if lora:
        model = model.merge_and_unload()
    if dist.world_size > 1 or engine is not None:
        from chatalign.training.zero_gather import gather_full_state

        state = gather_full_state(job.loss_module.model if not lora else model)
        if dist.is_main:
            save_hf_atomic(model, tok, run.model_dir, state_dict=state)
    else:
        save_hf_atomic(model, tok, run.model_dir)
    dist.barrier()
    return model


def eval_summary(base: dict | None, tuned: dict) -> dict:
    out = {"eval_pass_rate": tuned.get("pass_rate"), "eval_reference_nll": tuned.get("reference_nll")}
    if base:
        out["base_pass_rate"] = base.get("pass_rate")
        out["base_reference_nll"] = base.get("reference_nll")
    return out
