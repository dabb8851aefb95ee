"""DPO training throughput: chatalign's DPO stage vs TRL 1.16 `DPOTrainer`, side by side in one run.

Same model (the embedded SmolLM2-135M-Instruct by default; `--quick`: a tiny random-init Llama saved once and
loaded by both sides), fp32 on CPU, full fine-tune, no gradient checkpointing; the same pairs (the first N of
data/quickstart/pref_helpful_train.jsonl and pref_safety_train.jsonl, alternating); the same sigmoid loss with
beta 0.1; the same number of AdamW steps of the same number of pairs (lr, betas, no weight decay, grad clip
1.0, constant schedule). Both compute the reference log-probs once before training, with the starting model:

  chatalign   chatalign.dpo's machinery: encode_dpo_pairs -> plan_rows (both sides of each pair in one
              padding-free row, position ids restarting) -> score_pairs (the reference pass) ->
              PackedDPOLoss (per-document attention, the LM head only at answer positions) ->
              chatalign.training.loop.train (torch AdamW)
  trl         trl.DPOTrainer with precompute_ref_log_probs=True (its reference pass runs in the trainer's
              constructor, from the same model), ref_model=None; each batch pads the chosen and rejected
              sequences of `--trl-micro-batch` pairs to the longest one

TRL tokenizes its own data: it gets each prompt as the chat template's text with the generation prompt and
each answer followed by `<|im_end|>`, the token sequences chatalign scores (tests/dpo/test_trl_parity.py checks
that they are equal and that the losses match).

pairs_per_s and tokens_per_s count the pairs and real (non-pad) tokens trained per second of training wall
time; the reference pass is timed on its own (`*_reference_s`); model load and tokenization are outside both
clocks; final_loss is chatalign's last step and TRL's mean over the steps (its training_loss). Each side runs
in its own process (peak RSS from wait4 on that child alone); settings alternate
`--repeat` times and the best time of each is reported, with the process CPU time beside it.

    .venv/bin/python bench/dpo_vs_trl.py            # embedded model: 32 pairs, batch 16, 2 steps
    .venv/bin/python bench/dpo_vs_trl.py --quick    # tiny random-init model: 8 pairs, batch 4, 2 steps
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from child_process import run_measured  # bench/ is on sys.path when this script runs

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
DATA = [ROOT / "data" / "quickstart" / f"pref_{k}_train.jsonl" for k in ("helpful", "safety")]
RESULT_TAG = "RESULT "
BETA = 0.1


def bench_pairs(tok, n: int, max_seq_len: int = 512):
    """The first n pairs of the two quickstart preference files, alternating, as chatalign encodes them."""
    from chatalign.data_schemas import load_records
    from chatalign.dpo.pairs import encode_dpo_pairs

    files = [load_records(p, "preference").records for p in DATA]
    prefs = [files[i % 2][i // 2] for i in range(n)]
    pairs, _ = encode_dpo_pairs(tok, prefs, ["quickstart"] * n, max_seq_len)
    return prefs, pairs


def optim_config(lr: float):
    from chatalign.training.config import OptimConfig

    return OptimConfig(lr=lr, weight_decay=0.0, betas=(0.9, 0.95), schedule="constant", warmup_ratio=0.0,
                       grad_clip=1.0)


def fresh_model(name: str):
    from chatalign.models import load_causal_lm

    model = load_causal_lm(name, "float32")
    model.config.use_cache = False
    return model


def run_ours(model_name: str, pairs, args) -> dict:
    from chatalign.dpo.model import PackedDPOLoss, train_metrics
    from chatalign.dpo.pairs import collate_dpo
    from chatalign.dpo.reference import score_pairs
    from chatalign.reward.pairs import plan_rows
    from chatalign.runs import RunDir
    from chatalign.training.config import CheckpointConfig, DeepSpeedConfig
    from chatalign.training.distributed import DistContext
    from chatalign.training.loop import TrainJob, train

    model = fresh_model(model_name)
    t0 = time.perf_counter()
    for pair, (chosen, rejected) in zip(pairs, score_pairs(model, pairs, args.row_tokens).tolist(), strict=True):
        pair.ref_chosen, pair.ref_rejected = chosen, rejected
    ref_s = time.perf_counter() - t0
    rows, plan = plan_rows(pairs, args.batch, args.row_tokens, 1, seed=0)
    job = TrainJob(PackedDPOLoss(model, BETA), rows, [len(r.pairs) for r in rows], collate_dpo, plan,
                   unit="pairs", extra_metrics=train_metrics)
    with tempfile.TemporaryDirectory(prefix="bench-dpo-") as run_dir:
        t0, c0 = time.perf_counter(), time.process_time()
        last = train(job, optim_config(args.lr), CheckpointConfig(every_steps=10**9), DeepSpeedConfig(),
                     RunDir(run_dir, "bench"), DistContext(), resume=False, progress=False)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    tokens = sum(rows[i].n_tokens for step in plan for i in step)
    return {"seconds": seconds, "cpu_seconds": cpu, "reference_s": ref_s, "pairs": len(pairs),
            "real_tokens": tokens, "token_slots": tokens, "final_loss": last["loss"]}


def run_trl(model_name: str, tok, prefs, args) -> dict:
    # TRL prints its end-of-training summary (and DeepSpeed, imported by it, a log line) on stdout: keep
    # stdout for this script's JSON lines
    with contextlib.redirect_stdout(sys.stderr), tempfile.TemporaryDirectory(prefix="bench-trl-dpo-") as out:
        return _run_trl(model_name, tok, prefs, args, out)


def trl_args(args, out_dir: str):
    from trl import DPOConfig

    opt = optim_config(args.lr)
    return DPOConfig(
        output_dir=out_dir, beta=BETA, loss_type=["sigmoid"], precompute_ref_log_probs=True, max_length=None,
        per_device_train_batch_size=args.trl_micro_batch, gradient_accumulation_steps=args.batch // args.trl_micro_batch,
        max_steps=args.steps, learning_rate=opt.lr, weight_decay=0.0, adam_beta1=opt.betas[0],
        adam_beta2=opt.betas[1], adam_epsilon=opt.eps, max_grad_norm=opt.grad_clip, lr_scheduler_type="constant",
        warmup_steps=0, optim="adamw_torch", bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=True,
        save_strategy="no", eval_strategy="no", report_to=[], logging_strategy="no", disable_tqdm=True,
        dataloader_num_workers=0, dataset_num_proc=None, seed=0)


def _run_trl(model_name: str, tok, prefs, args, out_dir: str) -> dict:
    import datasets
    from transformers import TrainerCallback
    from trl import DPOTrainer

    from chatalign.reward.pairs import message_dicts
    from chatalign.text.masks import render_chat

    datasets.disable_progress_bars()
    rows = [{"prompt": render_chat(tok, message_dicts(p.prompt), add_generation_prompt=True),
             "chosen": p.chosen + tok.eos_token, "rejected": p.rejected + tok.eos_token} for p in prefs]

    class WallClock(TrainerCallback):
        t0 = t1 = c0 = c1 = 0.0

        def on_train_begin(self, *a, **k):
            self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_train_end(self, *a, **k):
            self.t1, self.c1 = time.perf_counter(), time.process_time()

    clock, model = WallClock(), fresh_model(model_name)
    t0 = time.perf_counter()  # the constructor tokenizes (a fraction of a second here) and runs the reference pass
    trainer = DPOTrainer(model=model, args=trl_args(args, out_dir),
                         train_dataset=datasets.Dataset.from_list(rows), processing_class=tok, callbacks=[clock])
    ref_s = time.perf_counter() - t0
    inner, counts = trainer.data_collator, {"real": 0, "slots": 0}

    def counting(batch_examples):
        batch = inner(batch_examples)
        counts["real"] += int(batch["attention_mask"].sum())
        counts["slots"] += batch["input_ids"].numel()
        return batch

    trainer.data_collator = counting
    out = trainer.train()
    return {"seconds": clock.t1 - clock.t0, "cpu_seconds": clock.c1 - clock.c0, "reference_s": ref_s,
            "pairs": len(prefs), "real_tokens": counts["real"], "token_slots": counts["slots"],
            "final_loss": out.training_loss}


def child_main(args) -> None:
    """One side in this (fresh) interpreter; prints its result line."""
    from chatalign.models import load_tokenizer

    tok = load_tokenizer(args.model)
    prefs, pairs = bench_pairs(tok, args.batch * args.steps)
    if len(pairs) < len(prefs):
        raise SystemExit(f"only {len(pairs)} of {len(prefs)} pairs fit 512 tokens a side")
    result = run_ours(args.model, pairs, args) if args.side == "chatalign" else run_trl(args.model, tok, prefs, args)
    print(RESULT_TAG + json.dumps(result), flush=True)


def run_child(side: str, argv: list[str], model: str) -> dict:
    """Run one side in a fresh interpreter: its peak RSS comes from wait4 on that child alone."""
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--model", model, "--side", side]
    out, code, peak = run_measured(cmd)
    lines = [ln[len(RESULT_TAG):] for ln in out.splitlines() if ln.startswith(RESULT_TAG)]
    if code != 0 or not lines:
        sys.stderr.write(out)
        raise SystemExit(f"{side} failed (exit {code}; -9 is usually the OOM killer: try a smaller --batch)")
    return {**json.loads(lines[-1]), "peak_rss_gib": peak}


def tiny_model_dir(parent: str) -> str:
    """A tiny random-init Llama with the embedded tokenizer's vocabulary, saved for both sides to load."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from chatalign.models import load_tokenizer, save_hf_atomic

    tok = load_tokenizer("embedded")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return str(save_hf_atomic(LlamaForCausalLM(cfg), tok, Path(parent) / "model"))


def compare(args, argv: list[str]) -> dict:
    import torch

    results: dict[str, list[dict]] = {"chatalign": [], "trl": []}
    with tempfile.TemporaryDirectory(prefix="bench-tiny-") as tiny:
        with contextlib.redirect_stdout(sys.stderr):  # DeepSpeed, imported on the way, logs on stdout
            model = tiny_model_dir(tiny) if args.quick else "embedded"
        for _ in range(args.repeat):
            for side in results:
                results[side].append(run_child(side, argv, model))
    best = {k: min(v, key=lambda r: r["seconds"]) for k, v in results.items()}
    ours, trl = best["chatalign"], best["trl"]
    line = {"bench": "dpo_vs_trl", "model": "tiny random-init Llama" if args.quick else
            "embedded SmolLM2-135M-Instruct", "dtype": "float32", "device": "cpu",
            "threads": args.threads or torch.get_num_threads(), "pairs": ours["pairs"], "batch_pairs": args.batch,
            "steps": args.steps, "trl_micro_batch_pairs": args.trl_micro_batch, "beta": BETA, "repeat": args.repeat}
    for side, r in best.items():
        line.update({f"{side}_pairs_per_s": round(r["pairs"] / r["seconds"], 4),
                     f"{side}_tokens_per_s": round(r["real_tokens"] / r["seconds"], 2),
                     f"{side}_train_s": [round(x["seconds"], 2) for x in results[side]],
                     f"{side}_cpu_s": [round(x["cpu_seconds"], 2) for x in results[side]],
                     f"{side}_reference_s": round(min(x["reference_s"] for x in results[side]), 2),
                     f"{side}_peak_rss_gib": max(x["peak_rss_gib"] for x in results[side]),
                     f"{side}_final_loss": round(r["final_loss"], 4)})
    line.update({"speedup": round(trl["seconds"] / ours["seconds"], 3),
                 "speedup_cpu_time": round(min(x["cpu_seconds"] for x in results["trl"]) /
                                           min(x["cpu_seconds"] for x in results["chatalign"]), 3),
                 "real_tokens": ours["real_tokens"], "trl_token_slots": trl["token_slots"],
                 "trl_padding_fraction": round(1 - trl["real_tokens"] / trl["token_slots"], 3)})
    return line


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny random-init model, 8 pairs, batch 4, 2 steps")
    p.add_argument("--batch", type=int, default=None, help="pairs per optimizer step (default 16; 4 with --quick)")
    p.add_argument("--steps", type=int, default=2, help="optimizer steps (default 2)")
    p.add_argument("--row-tokens", type=int, default=1024, help="chatalign's packed row budget (2 x 512 a side)")
    p.add_argument("--lr", type=float, default=1e-6)
    p.add_argument("--repeat", type=int, default=1, help="run each side this many times, alternating")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--trl-micro-batch", type=int, default=None, help="pairs per TRL forward (default: the batch)")
    p.add_argument("--model", default=None, help=argparse.SUPPRESS)  # child mode
    p.add_argument("--side", choices=("chatalign", "trl"), help=argparse.SUPPRESS)  # child mode
    argv = sys.argv[1:]
    args = p.parse_args(argv)
    args.batch = args.batch or (4 if args.quick else 16)
    args.trl_micro_batch = min(args.batch, args.trl_micro_batch or args.batch)
    if args.batch % args.trl_micro_batch:
        raise SystemExit(f"--trl-micro-batch {args.trl_micro_batch} must divide the batch of {args.batch} pairs")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.side:
        child_main(args)
        return
    print(json.dumps(compare(args, argv)), flush=True)


if __name__ == "__main__":
    main()
