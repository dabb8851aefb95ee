"""The rejection-sampling phase of a round: sample, score, select (and pool), write the data, fine-tune.

Under several ranks every rank loads the policy and samples its share of each chunk; rank 0 selects, pools and
writes the data; the fine-tune runs on all ranks through the SFT trainer (DeepSpeed, `rs.deepspeed`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from chatalign.errors import RunError
from chatalign.rlhf.rs.selection import (
    pool_best,
    pools_this_round,
    rescore_earlier,
    sample_and_score,
    scores_per_prompt,
    select_best,
    selected_record,
    training_conversations,
    write_jsonl_atomic,
)

log = logging.getLogger(__name__)

SUMMARY = "rs_summary.json"


def rs_sft_config(ctx, model_path: str, train_file: Path):
    from chatalign.sft.config import SFTConfig, SFTData, SFTEval
    from chatalign.tracking.config import inner_tracking
    from chatalign.training.config import ModelConfig

    cfg, rs = ctx.cfg, ctx.cfg.rs
    m = cfg.model
    return SFTConfig(
        output_dir=str(ctx.run.path / "rs_sft"),
        model=ModelConfig(name=model_path, dtype=m.dtype, trust_remote_code=m.trust_remote_code,
                          chat_template=m.chat_template, attn_implementation=m.attn_implementation,
                          gradient_checkpointing=m.gradient_checkpointing),
        data=SFTData(train=str(train_file)), train=rs.train, optim=rs.optim, lora=rs.lora,
        deepspeed=rs.deepspeed, distributed=cfg.distributed, checkpoint=rs.checkpoint, eval=SFTEval(compare_base=False),
        allow_changed_inputs=cfg.allow_changed_inputs, **inner_tracking(cfg, cfg.output_dir, "rs_sft"))


def sample_phase(ctx, model_path: str, dist=None) -> dict:
    """Samples, sweeps, selection and pooling; writes the data files and the RS summary (the phase marker)."""
    from chatalign.training.distributed import DistContext

    dist = dist or DistContext()
    rs, data = ctx.cfg.rs, ctx.run.path / "data"
    sampler = str(rs.sampler) if rs.sampler is not None else model_path  # answers are text: any tokenizer works
    generator, tok = load_sampler(ctx.cfg, sampler, dist)
    common = dict(top_p=rs.top_p, max_new_tokens=rs.max_new_tokens, batch_size=rs.batch_size, seed=rs.seed,
                  chunk_prompts=rs.chunk_prompts, progress=ctx.progress, dist=dist)
    samples = sample_and_score(generator, tok, ctx.prompts, ctx.reward_fn, data / "samples.jsonl",
                               num_samples=rs.num_samples, temperature=rs.temperature, **common)
    by_temp = {rs.temperature: scores_per_prompt([s for s in samples if s["prompt_index"] < rs.sweep_prompts])}
    for temp in rs.sweep_temperatures:
        if temp == rs.temperature:
            continue
        rows = sample_and_score(generator, tok, ctx.prompts[:rs.sweep_prompts], ctx.reward_fn,
                                data / f"sweep_T{temp:g}.jsonl", num_samples=rs.num_samples, temperature=temp,
                                **common)
        by_temp[temp] = scores_per_prompt(rows)
    generator.close()
    del generator
    return dist.run_on_main(lambda: select_and_write(ctx, samples, by_temp))


def load_sampler(cfg, sampler: str, dist):
    """(what draws the K answers, its tokenizer with the recipe's chat template): the native engine on the loaded
    model, or a vLLM engine over its directory (`generation.backend: vllm`; under several ranks one per rank)."""
    from chatalign.rlhf.ppo.models import load_chat_policy
    from chatalign.rollout.generator import launch_ranks, open_generator

    return open_generator(cfg.generation, cfg.model, sampler, lambda path: load_chat_policy(path, cfg.model),
                          launch_ranks(dist))


def select_and_write(ctx, samples: list[dict], by_temp: dict) -> dict:
    """Selection, pooling, data files, curves and the summary (one process: rank 0)."""
    from chatalign.rlhf.lineage import earlier_selected_files
    from chatalign.rlhf.rs.curves import plot_rs_curves, reward_vs_k, reward_vs_temperature
    from chatalign.runs import write_json_atomic

    rs, data = ctx.cfg.rs, ctx.run.path / "data"
    # An empty answer cannot be a training conversation; an answer cut at max_new_tokens would teach the model
    # to end its turn mid-sentence (SFT appends the end-of-turn token), so it is skipped unless allowed.
    usable = [s for s in samples if s["answer"].strip() and (s["finished"] or not rs.skip_unfinished)]
    best = select_best(usable)
    current = {k: selected_record(s, ctx.prompts[s["prompt_index"]], ctx.round) for k, s in best.items()}
    pooled_from: list[int] = []
    selections = [current]
    if pools_this_round(ctx.round, rs.pool_from_round):
        files = earlier_selected_files(ctx.start)
        pooled_from = [r for r, _ in files]
        if files:
            selections.append(rescore_earlier(files, ctx.reward_fn))
    selected = pool_best(selections)
    rows = sorted(selected.values(), key=lambda r: r["prompt_key"])
    if not rows:
        raise RunError(f"rejection sampling: no usable answer among {len(samples)} samples (empty, or cut at "
                       f"rs.max_new_tokens={rs.max_new_tokens} with rs.skip_unfinished on): raise max_new_tokens "
                       "or set rs.skip_unfinished=false")
    write_jsonl_atomic(data / "selected.jsonl", rows)
    write_jsonl_atomic(data / "rs_train.jsonl", training_conversations(rows))

    vs_k = reward_vs_k(scores_per_prompt(samples))
    vs_t = reward_vs_temperature(by_temp)
    plot_rs_curves(vs_k, vs_t, ctx.run.path / "rs_reward_vs_k.png", f"round {ctx.round}: rejection sampling")
    n = len(samples)
    summary = {
        "rs_prompts": len(ctx.prompts), "rs_prompts_selected": len(best), "rs_samples": n,
        "rs_samples_unusable": n - len(usable), "rs_num_samples": rs.num_samples,
        "rs_temperature": rs.temperature, "rs_backend": ctx.cfg.generation.backend,
        "rs_sampler": str(rs.sampler) if rs.sampler is not None else "policy",
        "rs_sample_reward_mean": sum(s["r_combined"] for s in samples) / max(1, n),
        "rs_selected_reward_mean": sum(r["r_combined"] for r in current.values()) / max(1, len(current)),
        "rs_train_rows": len(rows), "rs_pooled_from_rounds": pooled_from,
        "rs_from_earlier_rounds": sum(1 for r in rows if r["round"] != ctx.round),
        "rs_finished_fraction": sum(bool(s["finished"]) for s in samples) / max(1, n),
        "rs_reward_vs_k": vs_k, "rs_reward_vs_temperature": vs_t,
    }
    write_json_atomic(ctx.run.path / SUMMARY, summary)  # written last: marks the sampling as complete
    return summary


def release_engines(dist) -> None:
    """Free what is left of the fine-tune's ZeRO-3 engine (run_sft closed it) on every rank at the same point,
    before the next phase loads its models: its reference cycles otherwise keep partitions and communication
    state alive until some later collection, which once showed as a rank aborting in C++ while PPO loaded."""
    import gc

    gc.collect()
    dist.barrier()


def run_rs_phase(ctx, model_path: str, dist=None) -> tuple[str, dict]:
    """Return (path of the rejection-sampling model, summary); each part is skipped when already done."""
    from chatalign.runs import RunDir
    from chatalign.sft.run import run_sft
    from chatalign.training.distributed import DistContext

    dist = dist or DistContext()
    marker = ctx.run.path / SUMMARY
    if marker.is_file():
        summary = json.loads(marker.read_text(encoding="utf-8"))
        log.info("rejection sampling: samples and selection already done, reusing them")
    else:
        summary = sample_phase(ctx, model_path, dist)
    sft_dir = ctx.run.path / "rs_sft"
    sft_run = RunDir(sft_dir, "sft")
    # rank 0's view: it writes the SFT manifest, possibly before another rank would look
    finished, resume = dist.broadcast_object((sft_run.is_finished(), sft_run.manifest_path.is_file()))
    if not finished:
        cfg = rs_sft_config(ctx, model_path, ctx.run.path / "data" / "rs_train.jsonl")
        sft_summary = run_sft(cfg, resume=resume, progress=ctx.progress)
        release_engines(dist)
    else:
        sft_summary = (sft_run.read_manifest() or {}).get("metrics", {})
    summary["rs_sft_final_loss"] = sft_summary.get("final_loss")
    summary["rs_sft_steps"] = sft_summary.get("steps")
    return str(sft_dir / "model"), summary
