"""`chatalign sft`: prompt-masked, packed supervised fine-tuning into a run directory."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from chatalign.runs import write_text_atomic
from chatalign.sft.config import SFTConfig
from chatalign.sft.evaluate import evaluate_model, load_heldout

log = logging.getLogger(__name__)
INDEPENDENT_SUITES = ["general"]  # what `independent:` evaluates by default: does SFT keep what the base could do


def prepare(cfg: SFTConfig):
    """Everything before the model: data validated and tokenized (what --dry-run checks)."""
    from chatalign.models import load_tokenizer
    from chatalign.sft.data import encode_conversations, load_conversations
    from chatalign.text.templates import apply_named_template

    convs, skipped = load_conversations(cfg.data.train, cfg.data.format, cfg.data.on_error, cfg.data.quarantine,
                                        cfg.data.max_rows)
    for i, source in enumerate(cfg.data.extra):  # each file's skipped rows go to a quarantine file of its own
        quarantine = f"{cfg.data.quarantine}.extra{i}" if cfg.data.quarantine else None
        more, more_skipped = load_conversations(source.path, cfg.data.format, cfg.data.on_error, quarantine,
                                                source.max_rows, source.tags)
        convs, skipped = convs + more, skipped + more_skipped
    tok = load_tokenizer(cfg.model.name, cfg.model.trust_remote_code)
    apply_named_template(tok, cfg.model.chat_template)
    enc = encode_conversations(tok, convs, cfg.train.seq_len, cfg.train.train_on, cfg.train.truncation)
    enc.stats["skipped_rows"] = skipped
    if cfg.data.eval:
        enc.stats["eval_prompts"] = len(load_heldout(cfg.data.eval, cfg.eval.max_prompts))
    from chatalign.evaluation.stage_hook import check_data

    enc.stats.update({f"independent_{k}": v for k, v in check_data(cfg.independent, INDEPENDENT_SUITES).items()})
    return tok, enc


def apply_lora(model, cfg: SFTConfig):
    import torch

    from chatalign.seeding import drawing_from
    from chatalign.training.lora import apply_lora as add_adapters

    with drawing_from(torch.Generator().manual_seed(cfg.train.seed)):  # the same adapters on every rank and run
        return add_adapters(model, cfg.lora, "CAUSAL_LM", cfg.model.gradient_checkpointing)


def run_sft(cfg: SFTConfig, resume: bool = False, progress: bool = True) -> dict:
    from chatalign.runs import RunDir

    run = RunDir(cfg.output_dir, "sft")
    try:
        return _run_sft(cfg, run, resume, progress)
    finally:
        run.unlock()  # also on errors: a pipeline running stages in one process must not keep the lock


def _run_sft(cfg: SFTConfig, run, resume: bool, progress: bool) -> dict:

    from chatalign.training.distributed import DistContext
    from chatalign.training.loop import build_backend, train
    from chatalign.training.placement import place_for_training

    dist = DistContext.from_env(cfg.distributed.timeout_minutes)
    if dist.is_main:
        run.refuse_start_over("SFT", resume)
    # the data is checked before the run directory is made or locked: bad data leaves nothing behind
    tok, enc = prepare(cfg)
    if dist.is_main:
        run.lock()
        run.start(cfg.model_dump(mode="json"), {"train": cfg.data.train, "eval": cfg.data.eval,
                   **{f"extra_{i}": s.path for i, s in enumerate(cfg.data.extra)}},
                  parents=[str(Path(cfg.model.name).resolve())] if Path(cfg.model.name).exists() else [],
                  resume=resume, allow_changed_inputs=cfg.allow_changed_inputs)
        log.info("data: %s", json.dumps(enc.stats))
    model = load_model(cfg)
    place_for_training(model, dist, quantized=cfg.lora.quantize != "none",
                       engine_places=dist.use_deepspeed(cfg.deepspeed))
    heldout, base_eval = evaluate_base(cfg, model, tok, run, dist)
    if cfg.lora.enabled:
        model = apply_lora(model, cfg)
    elif cfg.train.trainable_layers:
        freeze_lower_layers(model, cfg.train.trainable_layers)
    job = sft_job(cfg, model, enc)
    t0 = time.perf_counter()
    backend = build_backend(job, cfg.optim, cfg.deepspeed, dist)
    last = train(job, cfg.optim, cfg.checkpoint, cfg.deepspeed, run, dist, resume, progress, desc="sft",
                 backend=backend)
    train_s = time.perf_counter() - t0
    final = finalize_model(backend, model, tok, run, dist, cfg)
    backend.close()
    summary = {"steps": len(job.plan), "packed_rows": len(job.items), "final_loss": last.get("loss"),
               "train_seconds_this_process": round(train_s, 1), **{f"data_{k}": v for k, v in enc.stats.items()}}
    if dist.is_main:
        if heldout is not None:
            tuned_eval = evaluate_model(final, tok, heldout, cfg.eval.max_new_tokens, cfg.eval.batch_size)
            write_text_atomic(run.path / "eval_final.json", json.dumps(tuned_eval, indent=1))
            summary.update(eval_summary(base_eval, tuned_eval))
        from chatalign.evaluation.stage_hook import run_independent
        from chatalign.sft.report import write_report

        run_independent(cfg.independent, run.path, str(run.model_dir), cfg.model.name, INDEPENDENT_SUITES, progress)
        write_report(run, cfg, summary)
        run.finish(summary, adapter_only=cfg.lora.adapter_only)
    dist.barrier()
    return summary


def load_model(cfg: SFTConfig, quantized: bool = True):
    from chatalign.models import load_causal_lm
    from chatalign.training.lora import quantization_kwargs

    extra = quantization_kwargs(cfg.lora, cfg.model.dtype) if quantized else {}
    model = load_causal_lm(cfg.model.name, cfg.model.dtype, cfg.model.trust_remote_code,
                           cfg.model.attn_implementation, **extra)
    model.config.use_cache = False
    if cfg.model.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    return model


def freeze_lower_layers(model, trainable_layers: int) -> list[str]:
    """Only the top `trainable_layers` decoder layers and the final norm train (chatalign.training.top_layers)."""
    from chatalign.training.lm_loss import decoder_and_head
    from chatalign.training.top_layers import train_top_layers

    return train_top_layers(model, *decoder_and_head(model), trainable_layers)


def evaluate_base(cfg: SFTConfig, model, tok, run, dist) -> tuple[list | None, dict | None]:
    """(held-out prompts, the starting model's evaluation): in one process with `data.eval` (the evaluation
    generates with the whole model); the base evaluation is computed once and kept in `eval_base.json`."""
    if not cfg.data.eval or dist.world_size != 1:
        return None, None
    heldout = load_heldout(cfg.data.eval, cfg.eval.max_prompts)
    if not cfg.eval.compare_base:
        return heldout, None
    base_file = run.path / "eval_base.json"
    if base_file.is_file():
        return heldout, json.loads(base_file.read_text())
    log.info("evaluating the starting model on %d held-out prompts", len(heldout))
    base_eval = evaluate_model(model, tok, heldout, cfg.eval.max_new_tokens, cfg.eval.batch_size)
    write_text_atomic(base_file, json.dumps(base_eval, indent=1))
    return heldout, base_eval


def sft_job(cfg: SFTConfig, model, enc):
    """Packed rows, the step plan and the masked LM loss for the training loop."""
    from chatalign.text.packing import collate_rows, pack_examples, step_plan
    from chatalign.training.lm_loss import PackedLMLoss
    from chatalign.training.loop import TrainJob

    rows = pack_examples(enc.examples, cfg.train.seq_len)
    plan = step_plan(len(rows), cfg.train.global_batch_rows, cfg.train.epochs, cfg.train.seed)
    if cfg.train.max_steps:
        plan = plan[:cfg.train.max_steps]
    return TrainJob(
        loss_module=PackedLMLoss(model), items=rows, weights=[r.n_trained for r in rows], collate=collate_rows,
        plan=plan, micro_batch_items=cfg.train.micro_batch_rows, unit="tok",
        trainable_filter=(lambda n: "lora_" in n) if cfg.lora.enabled else None)


def finalize_model(backend, model, tok, run, dist, cfg: SFTConfig):
    """Write `model/` (HF format, safetensors): LoRA merged (and `adapter/` with `lora.save: both`); under
    DeepSpeed the whole weights gathered from the ZeRO shards (every rank takes part) and written by rank 0."""
    from chatalign.models import save_hf_atomic

    state = backend.export_state(model)  # None: the weights are whole in this process
    if cfg.lora.enabled:
        from chatalign.training.lora import finish_lora

        model = finish_lora(model, cfg.lora, run.path, dist.is_main, lambda: load_model(cfg, quantized=False), state)
        state = None  # the merged model is whole
    if dist.is_main:
        save_hf_atomic(model, tok, run.model_dir, state_dict=state)
    dist.barrier()
    return model


def eval_summary(base: dict | None, tuned: dict) -> dict:
    out = {"eval_pass_rate": tuned.get("pass_rate"), "eval_reference_nll": tuned.get("reference_nll")}
    if base:
        out["base_pass_rate"] = base.get("pass_rate")
        out["base_reference_nll"] = base.get("reference_nll")
    return out
