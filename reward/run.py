"""`chatalign reward`: train a helpfulness or safety reward model into a run directory.

Order of work: load and check every source (bad rows: error with file and line, or quarantine), drop the
chosen-unsafe/rejected-safe pairs, draw the mix, encode and pack; train; write `model/` (HF format); then
rank 0 reloads `model/` through the public scorer and evaluates the held-out files with it, so the
reported accuracy is that of the saved model as later stages will load it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from chatalign.errors import DataError
from chatalign.reward.config import PrefSource, RewardConfig

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    tokenizer: object
    examples: list
    rows: list
    plan: list
    stats: dict
    read_token_ids: set
    eval_sets: dict  # held-out name -> pairs (excluded ones removed)
    eval_excluded: dict


def load_source(cfg: RewardConfig, src: PrefSource, group: str):
    """Valid pairs of one file (minus excluded ones) and what happened to the others."""
    from chatalign.data_schemas import load_records
    from chatalign.reward.safety_bins import bin_counts, drop_unsafe_over_safe

    quarantine = cfg.quarantine_for(src, group)
    result = load_records(src.path, "preference", fmt=src.format, on_error=cfg.data.on_error,
                          quarantine=quarantine)
    prefs = result.records[:src.max_rows] if src.max_rows else list(result.records)
    excluded = 0
    if cfg.data.exclude_unsafe_chosen:
        prefs, excluded = drop_unsafe_over_safe(prefs)
    stats = {"rows_valid": len(result.records), "rows_skipped": result.skipped,
             "excluded_chosen_unsafe_rejected_safe": excluded, "usable": len(prefs),
             "safety_bins": bin_counts(prefs), "format": ",".join(sorted(set(result.formats.values())))}
    if quarantine:
        stats["quarantine"] = quarantine
    return prefs, stats


def load_mix(cfg) -> tuple[list, list[str], dict]:
    """The training mix of a config with preference `data` (RM, DPO): its records, each record's source label,
    and per-source statistics."""
    from chatalign.reward.mixing import sample_mix

    pools, per_source = [], {}
    for src in cfg.data.sources:
        prefs, stats = load_source(cfg, src, "train")
        if not prefs:
            raise DataError(f"{src.path}: no usable preference pairs")
        pools.append(prefs)
        per_source[src.label] = stats
    mix = sample_mix(pools, [s.ratio for s in cfg.data.sources], cfg.train.seed, cfg.data.total,
                     [s.max_repeats for s in cfg.data.sources])
    labels = [s.label for s in cfg.data.sources]
    for label, k, over in zip(labels, mix.counts, mix.oversampled, strict=True):
        per_source[label]["drawn"] = k
        if over:
            per_source[label]["oversampled"] = True
            log.warning("source %s: %d pairs drawn from %d (repeated)", label, k, per_source[label]["usable"])
    return [p for _, p in mix.items], [labels[i] for i, _ in mix.items], per_source


def prepare(cfg: RewardConfig) -> Prepared:
    """Everything before the model (what --dry-run checks): data loaded, mixed, encoded, planned."""
    from chatalign.models import load_tokenizer
    from chatalign.reward.margins import margin_for, resolve_margin_table
    from chatalign.reward.pairs import encode_pairs, plan_rows
    from chatalign.text.templates import apply_named_template

    prefs, sources, per_source = load_mix(cfg)
    eval_sets, eval_excluded = {}, {}
    for src in cfg.data.eval:  # held-out files are checked now, not after an hour of training
        prefs_eval, stats = load_source(cfg, src, "eval")
        per_source[f"eval:{src.label}"] = stats
        eval_sets[src.label] = prefs_eval[:cfg.eval.max_pairs] if cfg.eval.max_pairs else prefs_eval
        eval_excluded[src.label] = stats["excluded_chosen_unsafe_rejected_safe"]
    table = resolve_margin_table(cfg.margin)
    margins = [margin_for(p.strength, table, cfg.default_strength) for p in prefs]
    tok = load_tokenizer(cfg.model.name, cfg.model.trust_remote_code)
    apply_named_template(tok, cfg.model.chat_template)
    examples, enc_stats = encode_pairs(tok, prefs, sources, margins, cfg.train.max_seq_len)
    if enc_stats["too_long"]:
        log.warning("%d pairs left out: a side is longer than train.max_seq_len=%d even with only its last "
                    "round", enc_stats["too_long"], cfg.train.max_seq_len)
    rows, plan = plan_rows(examples, cfg.train.global_batch_pairs, cfg.train.row_tokens, cfg.train.epochs,
                           cfg.train.seed)
    if cfg.train.max_steps:
        plan = plan[:cfg.train.max_steps]
    stats = {"kind": cfg.kind, "sources": per_source, "mix_total": len(prefs), **enc_stats,
             "margin_table": table, "steps": len(plan), "packed_rows": sum(len(s) for s in plan),
             "pairs_per_step": cfg.train.global_batch_pairs}
    read_ids = {e.chosen_ids[-1] for e in examples} | {e.rejected_ids[-1] for e in examples}
    if cfg.independent.enabled:
        from chatalign.reward.independent import check_independent

        stats["independent_pairs"] = check_independent(cfg)
    return Prepared(tok, examples, rows, plan, stats, read_ids, eval_sets, eval_excluded)


def apply_lora(model, cfg: RewardConfig):
    from chatalign.training.lora import apply_lora as add_adapters

    # SEQ_CLS makes peft train (and save) a full copy of the new `score` head beside the adapters
    return add_adapters(model, cfg.lora, "SEQ_CLS", cfg.model.gradient_checkpointing)


def open_run(cfg: RewardConfig, dist, resume: bool):
    from chatalign.runs import RunDir

    run = RunDir(cfg.output_dir, "reward")
    if dist.is_main:
        run.refuse_start_over("reward", resume)
        run.lock()
    return run


def run_reward(cfg: RewardConfig, resume: bool = False, progress: bool = True) -> dict:
    from chatalign.training.distributed import DistContext

    dist = DistContext.from_env(cfg.distributed.timeout_minutes)
    run = open_run(cfg, dist, resume)
    try:  # the lock is released however the run ends (a pipeline runs stages in one process)
        return train_evaluate_report(cfg, run, dist, resume, progress)
    finally:
        run.unlock()


def build_model(cfg: RewardConfig, dist, rng):
    """The RM to train, and which of its parameters a checkpoint must hold (None: all). The new head and
    LoRA's adapters are drawn from `rng`, the run's random stream."""

    from chatalign.reward.model import freeze_lower_layers, load_reward_model
    from chatalign.seeding import drawing_from
    from chatalign.training.lora import quantization_kwargs
    from chatalign.training.placement import place_for_training

    model = load_reward_model(cfg.model.name, cfg.model.dtype, cfg.model.trust_remote_code,
                              cfg.model.attn_implementation, generator=rng,
                              **quantization_kwargs(cfg.lora, cfg.model.dtype, keep=["score"]))
    place_for_training(model, dist, quantized=cfg.lora.quantize != "none",
                       engine_places=dist.use_deepspeed(cfg.deepspeed))
    if cfg.model.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.lora.enabled:
        with drawing_from(rng):
            model = apply_lora(model, cfg)
        return model, (lambda n: "lora_" in n or "modules_to_save" in n)
    if cfg.train.trainable_layers:
        trained = {f"model.{n}" for n in freeze_lower_layers(model, cfg.train.trainable_layers)}
        return model, trained.__contains__
    return model, None


def train_evaluate_report(cfg: RewardConfig, run, dist, resume: bool, progress: bool) -> dict:
    import gc

    import torch

    from chatalign.reward.model import PackedRewardLoss, train_metrics
    from chatalign.seeding import drawing_from
    from chatalign.training.loop import TrainJob, build_backend, train

    prep = prepare(cfg)
    inputs = {f"train:{s.label}": s.path for s in cfg.data.sources} | {f"eval:{s.label}": s.path
                                                                        for s in cfg.data.eval}
    if dist.is_main:
        run.start(cfg.model_dump(mode="json"), inputs,
                  parents=[str(Path(cfg.model.name).resolve())] if Path(cfg.model.name).exists() else [],
                  resume=resume, allow_changed_inputs=cfg.allow_changed_inputs)
        log.info("data: %s", json.dumps(prep.stats))
    rng = torch.Generator().manual_seed(cfg.train.seed)  # the run's own stream: head, adapters, dropout
    model, keep = build_model(cfg, dist, rng)
    job = TrainJob(
        loss_module=PackedRewardLoss(model), items=prep.rows, weights=[len(r.pairs) for r in prep.rows],
        collate=collate, plan=prep.plan, micro_batch_items=cfg.train.micro_batch_rows, unit="pairs",
        extra_metrics=train_metrics, trainable_filter=keep)
    t0 = time.perf_counter()
    with drawing_from(rng):
        backend = build_backend(job, cfg.optim, cfg.deepspeed, dist)
        last = train(job, cfg.optim, cfg.checkpoint, cfg.deepspeed, run, dist, resume, progress,
                     desc=f"reward:{cfg.kind}", backend=backend)
    train_s = time.perf_counter() - t0
    finalize_model(model, prep, run, dist, cfg)
    backend.close()
    del job, model, backend
    gc.collect()  # the evaluation loads model/ afresh: free the training copy first
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    summary = {"kind": cfg.kind, "steps": len(prep.plan), "pairs": prep.stats["pairs"],
               "final_loss": last.get("loss"), "final_train_accuracy": last.get("accuracy"),
               "pairs_per_s": last.get("pairs_per_s"), "train_seconds_this_process": round(train_s, 1)}
    if dist.is_main:
        evaluation = evaluate_run(cfg, run, prep)
        if evaluation:
            summary.update(eval_summary(evaluation))
        from chatalign.reward.independent import run_reward_independent
        from chatalign.reward.report import write_report

        run_reward_independent(cfg, run, prep, evaluation, load_source)
        write_report(run, cfg, prep.stats, summary, evaluation)
        run.finish(summary, {"data": prep.stats})
    return summary


def collate(rows):
    from chatalign.reward.pairs import collate_pairs

    return collate_pairs(rows)


def finalize_model(model, prep: Prepared, run, dist, cfg: RewardConfig) -> None:
    """Write `model/` (HF sequence-classification, safetensors): LoRA merged (and `adapter/` with `lora.save:
    both`; QLoRA and ZeRO-3 merged into the full-precision base), ZeRO-3 shards gathered."""
    from chatalign.reward.model import load_reward_model, save_reward_model

    state = None
    if any(hasattr(p, "ds_id") for p in model.parameters()):
        from chatalign.training.zero_gather import gather_full_state

        state = gather_full_state(model)  # a collective: every rank
    if cfg.lora.enabled:
        from chatalign.training.lora import finish_lora

        m = cfg.model
        model = finish_lora(model, cfg.lora, run.path, dist.is_main, lambda: load_reward_model(
            m.name, m.dtype, m.trust_remote_code, m.attn_implementation), state)
        state = None
    if dist.is_main:
        save_reward_model(model, prep.tokenizer, run.model_dir, prep.read_token_ids, state_dict=state)
    dist.barrier()


def evaluate_run(cfg: RewardConfig, run, prep: Prepared) -> dict | None:
    """Held-out accuracy of the saved `model/`, loaded back through the public scorer."""
    if not prep.eval_sets:
        return None
    from chatalign.reward.eval_report import write_eval_files
    from chatalign.reward.evaluate import evaluate_sets
    from chatalign.reward.scorer import load_scorer

    result = evaluate_sets(load_scorer(run.model_dir), prep.eval_sets,
                           prep.eval_excluded, cfg.eval.batch_tokens)
    result["model"] = str(run.model_dir)
    result["data"] = [s.path for s in cfg.data.eval]
    write_eval_files(result, run.path, f"{cfg.kind} RM")
    return result


def eval_summary(result: dict) -> dict:
    out = {"eval_accuracy": result["overall"]["accuracy"], "eval_pairs": result["overall"]["pairs"]}
    for label, row in result["per_strength"].items():
        out[f"eval_accuracy_{label}"] = row["accuracy"]
    return out
