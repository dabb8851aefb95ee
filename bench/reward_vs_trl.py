"""Reward-model training throughput: chatalign's packed RM loop vs TRL 1.16 `RewardTrainer`, in one run.

Same model (the embedded SmolLM2-135M-Instruct with a fresh scalar head, same seed; fp32, CPU, full fine-tune,
no gradient checkpointing on either side), same pairs (the first N of data/quickstart/pref_helpful_train.jsonl,
tokenized once by chatalign: prompt + answer through the chat template, cut at the answer's end-of-turn
token), the same margins (the `small` table of Llama 2), the same number of AdamW steps of the same batch
of pairs (lr, betas, weight decay, grad clip 1.0).

  chatalign   chatalign.reward's machinery: plan_rows (both sides of each pair in one padding-free row,
              position ids restarting) -> PackedRewardLoss -> chatalign.trainer.train (torch AdamW)
  trl         trl.RewardTrainer on pre-tokenized `chosen_ids` / `rejected_ids` / `margin` columns: each
              batch pads chosen and rejected sequences to the longest one and runs the head on every position

TRL reads each sequence at its rightmost non-pad token; SmolLM2's pad token is its end-of-turn token, so
the TRL side uses `<|endoftext|>` as pad (as chatalign's saved RMs do), and both read the same token.

pairs_per_s is pairs trained per second of training wall time (model load and data preparation outside the
clock). The machine this was written on is shared with other jobs: settings alternate `--repeat` times and
the best time of each is reported, beside the CPU time the process used (`speedup_cpu_time`; with
`--threads 1` it is close to what an idle core would take) and the work each did (real and padded tokens).

    .venv/bin/python bench/reward_vs_trl.py             # 32 pairs, batch 16, 2 steps
    .venv/bin/python bench/reward_vs_trl.py --quick     # 8 pairs, batch 4, 2 steps: a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "quickstart" / "pref_helpful_train.jsonl"


def build_pairs(n: int, max_seq_len: int):
    from chatalign.data_schemas import load_records
    from chatalign.models import load_tokenizer
    from chatalign.reward.margins import MARGIN_TABLES, margin_for
    from chatalign.reward.pairs import encode_pairs

    prefs = load_records(DATA, "preference").records[:n]
    tok = load_tokenizer("embedded")
    margins = [margin_for(p.strength, MARGIN_TABLES["small"], "unsure") for p in prefs]
    examples, _ = encode_pairs(tok, prefs, ["helpful"] * len(prefs), margins, max_seq_len)
    return tok, examples


def optim_config(lr: float):
    from chatalign.train_config import OptimConfig

    return OptimConfig(lr=lr, weight_decay=0.1, schedule="constant", warmup_ratio=0.0, grad_clip=1.0)


def fresh_model():
    from chatalign.reward.model import load_reward_model

    return load_reward_model("embedded", "float32", seed=0)


def run_ours(examples, args) -> dict:
    from chatalign.distributed import DistContext
    from chatalign.reward.model import PackedRewardLoss, train_metrics
    from chatalign.reward.pairs import collate_pairs, plan_rows
    from chatalign.runs import RunDir
    from chatalign.train_config import CheckpointConfig, DeepSpeedConfig
    from chatalign.trainer import TrainJob, train

    model = fresh_model()
    rows, plan = plan_rows(examples, args.batch, args.row_tokens, 1, seed=0)
    plan = plan[:args.steps]
    job = TrainJob(PackedRewardLoss(model), rows, [len(r.pairs) for r in rows], collate_pairs, plan,
                   micro_batch_items=1, unit="pairs", extra_metrics=train_metrics)
    run = RunDir(tempfile.mkdtemp(prefix="bench-rm-"), "bench")
    t0, c0 = time.perf_counter(), time.process_time()
    last = train(job, optim_config(args.lr), CheckpointConfig(every_steps=10**9), DeepSpeedConfig(), run,
                 DistContext(), resume=False, progress=False)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    pairs = sum(len(rows[i].pairs) for step in plan for i in step)
    tokens = sum(rows[i].n_tokens for step in plan for i in step)
    return {"seconds": seconds, "cpu_seconds": cpu, "pairs": pairs, "real_tokens": tokens, "padded_tokens": tokens,
            "forwards": sum(len(s) for s in plan), "final_loss": last["loss"]}


def run_trl(tok, examples, args) -> dict:
    import datasets
    from transformers import TrainerCallback
    from trl import RewardConfig, RewardTrainer

    datasets.disable_progress_bars()
    trl_tok = tok.__class__.from_pretrained(tok.name_or_path)
    trl_tok.pad_token = "<|endoftext|>"
    model = fresh_model()
    model.config.pad_token_id = trl_tok.pad_token_id
    n = args.batch * args.steps
    ds = datasets.Dataset.from_list([{"chosen_ids": e.chosen_ids, "rejected_ids": e.rejected_ids,
                                      "margin": e.margin} for e in examples[:n]])
    opt = optim_config(args.lr)
    targs = RewardConfig(
        output_dir=tempfile.mkdtemp(prefix="bench-trl-rm-"), per_device_train_batch_size=args.batch,
        gradient_accumulation_steps=1, max_steps=args.steps, learning_rate=opt.lr, weight_decay=opt.weight_decay,
        adam_beta1=opt.betas[0], adam_beta2=opt.betas[1], adam_epsilon=opt.eps, max_grad_norm=opt.grad_clip,
        lr_scheduler_type="constant", warmup_steps=0, optim="adamw_torch", bf16=False, fp16=False,
        gradient_checkpointing=False, use_cpu=True, max_length=None, save_strategy="no", eval_strategy="no",
        report_to=[], logging_strategy="no", disable_tqdm=True, dataloader_num_workers=0, seed=0)

    class WallClock(TrainerCallback):
        t0 = t1 = c0 = c1 = 0.0

        def on_train_begin(self, *a, **k):
            self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_train_end(self, *a, **k):
            self.t1, self.c1 = time.perf_counter(), time.process_time()

    clock = WallClock()
    trainer = RewardTrainer(model=model, args=targs, train_dataset=ds, processing_class=trl_tok, callbacks=[clock])
    inner = trainer.data_collator
    counts = {"real": 0, "slots": 0}

    def counting(batch_examples):
        batch = inner(batch_examples)
        counts["real"] += int(batch["attention_mask"].sum())
        counts["slots"] += batch["input_ids"].numel()
        return batch

    trainer.data_collator = counting
    out = trainer.train()
    return {"seconds": clock.t1 - clock.t0, "cpu_seconds": clock.c1 - clock.c0, "pairs": n, "real_tokens": counts["real"],
            "padded_tokens": counts["slots"], "forwards": args.steps, "final_loss": out.training_loss}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="8 pairs, batch 4, 2 steps")
    p.add_argument("--batch", type=int, default=16, help="pairs per optimizer step (both sides)")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--row-tokens", type=int, default=512,
                   help="chatalign's packed row budget (CPU: short rows, since sdpa attends densely over a row)")
    p.add_argument("--max-seq-len", type=int, default=512)
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--repeat", type=int, default=1, help="run each setting this many times, alternating")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = p.parse_args()
    if args.quick:
        args.batch, args.steps = 4, 2
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    tok, examples = build_pairs(args.batch * args.steps, args.max_seq_len)
    if len(examples) < args.batch * args.steps:
        raise SystemExit(f"only {len(examples)} pairs fit max_seq_len={args.max_seq_len}")
    results: dict[str, list[dict]] = {"chatalign": [], "trl": []}
    for _ in range(args.repeat):
        results["chatalign"].append(run_ours(examples, args))
        results["trl"].append(run_trl(tok, examples, args))
    best = {k: min(v, key=lambda r: r["seconds"]) for k, v in results.items()}
    ours, trl = best["chatalign"], best["trl"]
    line = {
        "bench": "reward_vs_trl", "model": "embedded SmolLM2-135M-Instruct", "dtype": "float32", "device": "cpu",
        "threads": torch.get_num_threads(), "pairs": ours["pairs"], "batch_pairs": args.batch,
        "steps": args.steps, "margin": "small", "repeat": args.repeat,
        "chatalign_pairs_per_s": round(ours["pairs"] / ours["seconds"], 4),
        "trl_pairs_per_s": round(trl["pairs"] / trl["seconds"], 4),
        "speedup": round((ours["pairs"] / ours["seconds"]) / (trl["pairs"] / trl["seconds"]), 3),
        "chatalign_seconds": [round(r["seconds"], 1) for r in results["chatalign"]],
        "trl_seconds": [round(r["seconds"], 1) for r in results["trl"]],
        # CPU time of this process: on a machine shared with other jobs, less noisy than wall time
        "chatalign_cpu_seconds": [round(r["cpu_seconds"], 1) for r in results["chatalign"]],
        "trl_cpu_seconds": [round(r["cpu_seconds"], 1) for r in results["trl"]],
        "speedup_cpu_time": round(min(r["cpu_seconds"] for r in results["trl"]) /
                                  min(r["cpu_seconds"] for r in results["chatalign"]), 3),
        "real_tokens": ours["real_tokens"], "trl_token_slots": trl["padded_tokens"],
        "trl_padding_fraction": round(1 - trl["real_tokens"] / trl["padded_tokens"], 3),
        "chatalign_final_loss": round(ours["final_loss"], 4), "trl_final_loss": round(trl["final_loss"], 4),
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
