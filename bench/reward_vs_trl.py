"""Reward-model training throughput: chatalign's packed RM loop vs TRL 1.16 `RewardTrainer`, in one run.

Same model (the embedded SmolLM2-135M-Instruct with a fresh scalar head, same seed; fp32, CPU, full fine-tune,
no gradient checkpointing on either side), same pairs, the same margins (the `small` table of Llama 2), the
same number of AdamW steps of the same batch of pairs (lr, betas, weight decay, grad clip 1.0).

  chatalign   chatalign.reward's machinery: plan_rows (both sides of each pair in one padding-free row,
              position ids restarting) -> PackedRewardLoss (per-document attention, head read only at each
              sequence's last token) -> chatalign.training.loop.train (torch AdamW)
  trl         trl.RewardTrainer on pre-tokenized `chosen_ids` / `rejected_ids` / `margin` columns: each
              batch pads chosen and rejected sequences to the longest one and runs the head on every position

Workloads (`--workload`; the default runs both, one JSON line each):

  quickstart  the first N pairs of data/quickstart/pref_helpful_train.jsonl, tokenized once by chatalign
              (prompt + answer through the chat template, cut at the answer's end-of-turn token). Short
              sequences of similar length: TRL pads about 47% of a 16-pair batch, which caps what a padding-free
              loop can gain near 1.9x.
  reference   issue 9's reference workload at CPU size (bench/workloads.py): synthetic pairs of random
              ordinary token ids, one log-normal prompt shared by both sides and one log-normal answer per
              side (sequences of median ~200 tokens, ~40% of them prompt, cut at 1024, ending on the
              end-of-turn token), seeded; strengths drawn with the same seed. TRL pads about 70% of a
              16-pair batch here, 78% of the default run's 16 pairs (the issue measured 0.13 pairs/s with 77%
              padding on this machine class).

TRL reads each sequence at its rightmost non-pad token; SmolLM2's pad token is its end-of-turn token, so
the TRL side uses `<|endoftext|>` as pad (as chatalign's saved RMs do), and both read the same token.

pairs_per_s is pairs trained per second of training wall time (model load and data preparation outside the
clock). Each side runs in its own process (peak RSS from wait4 on that child alone). TRL runs
`--trl-micro-batch` pairs per forward and accumulates gradients up to the same batch of pairs per optimizer
step: 4 for the reference workload, whose 16 pairs padded in one forward need more than 24 GB. The machine this was written on is shared with other jobs: settings alternate `--repeat` times and
the best time of each is reported, beside the CPU time the process used (`speedup_cpu_time`; with
`--threads 1` it is close to what an idle core would take) and the work each did (real tokens, TRL's padded
token slots and its padding share `trl_padding_fraction`).

    .venv/bin/python bench/reward_vs_trl.py                        # both workloads (quickstart: 32 pairs,
                                                                   # batch 16, 2 steps; reference: 16 pairs, 1 step)
    .venv/bin/python bench/reward_vs_trl.py --workload reference   # one workload
    .venv/bin/python bench/reward_vs_trl.py --quick                # 8 pairs, batch 4, 2 steps each: a smoke test
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

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DATA = ROOT / "data" / "quickstart" / "pref_helpful_train.jsonl"
WORKLOADS = ("quickstart", "reference")
SIZES = {"quickstart": (16, 2), "reference": (16, 1)}  # (pairs per step, steps): a few minutes each on 2 cores
QUICK_SIZE = (4, 2)
# pairs per TRL forward (the rest by gradient accumulation, same pairs per optimizer step): 16 reference pairs
# padded to ~1024 tokens in one forward need ~45 GB of activations, more than this 24 GB machine has (OOM)
TRL_MICRO = {"quickstart": 16, "reference": 4}
RESULT_TAG = "RESULT "
TARGET = 3.0  # issue 9: ours / TRL in pairs/s on CPU
MAX_SEQ_LEN = {"quickstart": 512, "reference": 1024}  # tokens per side; the reference caps its lengths here


def quickstart_pairs(tok, n: int, max_seq_len: int):
    from chatalign.data_schemas import load_records
    from chatalign.reward.margins import MARGIN_TABLES, margin_for
    from chatalign.reward.pairs import encode_pairs

    prefs = load_records(DATA, "preference").records[:n]
    margins = [margin_for(p.strength, MARGIN_TABLES["small"], "unsure") for p in prefs]
    examples, _ = encode_pairs(tok, prefs, ["helpful"] * len(prefs), margins, max_seq_len)
    return examples


def reference_pairs(tok, n: int, max_seq_len: int, seed: int = 0):
    """Synthetic pairs of the reference shape (bench/workloads.py), as the PairExamples plan_rows takes."""
    import random

    from chatalign.reward.margins import MARGIN_TABLES, STRENGTHS
    from chatalign.reward.pairs import PairExample

    if str(BENCH) not in sys.path:  # bench/ is not a package: its shared workload module sits beside us
        sys.path.insert(0, str(BENCH))
    from workloads import reference_pairs as draw

    end = tok.convert_tokens_to_ids("<|im_end|>")  # where the head reads (SmolLM2's end-of-turn token)
    rng = random.Random(seed)
    strengths = [rng.choice(STRENGTHS) for _ in range(n)]
    return [PairExample(c, r, MARGIN_TABLES["small"][s], s, "reference", "unlabelled")
            for (c, r), s in zip(draw(n, len(tok), end, seed=seed, cap=max_seq_len), strengths, strict=True)]


def build_pairs(workload: str, n: int, max_seq_len: int):
    from chatalign.models import load_tokenizer

    tok = load_tokenizer("embedded")
    build = quickstart_pairs if workload == "quickstart" else reference_pairs
    return tok, build(tok, n, max_seq_len)


def workload_stats(examples) -> dict:
    lengths = sorted(len(s) for e in examples for s in (e.chosen_ids, e.rejected_ids))
    return {"seq_tokens_median": lengths[len(lengths) // 2], "seq_tokens_max": lengths[-1]}


def optim_config(lr: float):
    from chatalign.training.config import OptimConfig

    return OptimConfig(lr=lr, weight_decay=0.1, schedule="constant", warmup_ratio=0.0, grad_clip=1.0)


def fresh_model():
    from chatalign.reward.model import load_reward_model

    return load_reward_model("embedded", "float32", seed=0)


def run_ours(examples, args) -> dict:
    from chatalign.reward.model import PackedRewardLoss, train_metrics
    from chatalign.reward.pairs import collate_pairs, plan_rows
    from chatalign.runs import RunDir
    from chatalign.training.config import CheckpointConfig, DeepSpeedConfig
    from chatalign.training.distributed import DistContext
    from chatalign.training.loop import TrainJob, train

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
    # TRL prints its end-of-training summary (and DeepSpeed, imported by it, a log line) on stdout: keep
    # stdout for this script's JSON lines
    with contextlib.redirect_stdout(sys.stderr):
        return _run_trl(tok, examples, args)


def _run_trl(tok, examples, args) -> dict:
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
        output_dir=tempfile.mkdtemp(prefix="bench-trl-rm-"), per_device_train_batch_size=args.trl_micro_batch,
        gradient_accumulation_steps=args.batch // args.trl_micro_batch, max_steps=args.steps, learning_rate=opt.lr, weight_decay=opt.weight_decay,
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
            "padded_tokens": counts["slots"], "forwards": args.steps * args.batch // args.trl_micro_batch,
            "final_loss": out.training_loss}


def workload_args(workload: str, args) -> argparse.Namespace:
    batch, steps = QUICK_SIZE if args.quick else SIZES[workload]
    batch = args.batch or batch
    max_seq_len = args.max_seq_len or MAX_SEQ_LEN[workload]
    micro = min(batch, args.trl_micro_batch or TRL_MICRO[workload])
    if batch % micro:
        raise SystemExit(f"--trl-micro-batch {micro} must divide the batch of {batch} pairs")
    return argparse.Namespace(**{**vars(args), "workload": workload, "batch": batch, "steps": args.steps or steps,
                                 "max_seq_len": max_seq_len, "row_tokens": args.row_tokens or 2 * max_seq_len,
                                 "trl_micro_batch": micro})


def child_main(args) -> None:
    """One side of one workload in this (fresh) interpreter; prints its result line."""
    wl = workload_args(args.workload, args)
    tok, examples = build_pairs(wl.workload, wl.batch * wl.steps, wl.max_seq_len)
    if len(examples) < wl.batch * wl.steps:
        raise SystemExit(f"only {len(examples)} pairs fit max_seq_len={wl.max_seq_len}")
    result = run_ours(examples, wl) if args.side == "chatalign" else run_trl(tok, examples, wl)
    result["stats"] = workload_stats(examples[:wl.batch * wl.steps])
    print(RESULT_TAG + json.dumps(result), flush=True)


def run_child(side: str, workload: str, argv: list[str]) -> dict:
    """Run one side in a fresh interpreter: its peak RSS comes from wait4 on that child alone."""
    # the child's --workload comes last: argparse keeps the last value of a repeated option
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--workload", workload, "--side", side]
    out, code, peak = run_measured(cmd)
    lines = [ln[len(RESULT_TAG):] for ln in out.splitlines() if ln.startswith(RESULT_TAG)]
    if code != 0 or not lines:
        sys.stderr.write(out)
        raise SystemExit(f"{side} on {workload} failed (exit {code}; -9 is usually the OOM killer: "
                         "try a smaller --trl-micro-batch or --batch)")
    result = json.loads(lines[-1])
    result["peak_rss_gib"] = peak
    return result


def run_workload(workload: str, args, argv: list[str]) -> dict:
    """Both sides on one workload, each in its own process, alternating `--repeat` times; the comparison line."""
    import torch

    wl = workload_args(workload, args)
    results: dict[str, list[dict]] = {"chatalign": [], "trl": []}
    for _ in range(args.repeat):
        for side in results:
            results[side].append(run_child(side, workload, argv))
    best = {k: min(v, key=lambda r: r["seconds"]) for k, v in results.items()}
    ours, trl = best["chatalign"], best["trl"]
    speedup = (ours["pairs"] / ours["seconds"]) / (trl["pairs"] / trl["seconds"])
    return {
        "bench": "reward_vs_trl", "workload": workload, "model": "embedded SmolLM2-135M-Instruct",
        "dtype": "float32", "device": "cpu", "threads": args.threads or torch.get_num_threads(),
        "pairs": ours["pairs"], "batch_pairs": wl.batch, "steps": wl.steps, "row_tokens": wl.row_tokens,
        "trl_micro_batch_pairs": wl.trl_micro_batch, "margin": "small", "repeat": args.repeat, **ours["stats"],
        "chatalign_pairs_per_s": round(ours["pairs"] / ours["seconds"], 4),
        "trl_pairs_per_s": round(trl["pairs"] / trl["seconds"], 4),
        "speedup": round(speedup, 3), "target": TARGET, "met": speedup >= TARGET,
        "chatalign_seconds": [round(r["seconds"], 1) for r in results["chatalign"]],
        "trl_seconds": [round(r["seconds"], 1) for r in results["trl"]],
        # CPU time of the training process: on a machine shared with other jobs, less noisy than wall time
        "chatalign_cpu_seconds": [round(r["cpu_seconds"], 1) for r in results["chatalign"]],
        "trl_cpu_seconds": [round(r["cpu_seconds"], 1) for r in results["trl"]],
        "speedup_cpu_time": round(min(r["cpu_seconds"] for r in results["trl"]) /
                                  min(r["cpu_seconds"] for r in results["chatalign"]), 3),
        "chatalign_peak_rss_gib": max(r["peak_rss_gib"] for r in results["chatalign"]),
        "trl_peak_rss_gib": max(r["peak_rss_gib"] for r in results["trl"]),
        "real_tokens": ours["real_tokens"], "trl_real_tokens": trl["real_tokens"],
        "trl_token_slots": trl["padded_tokens"],
        "trl_padding_fraction": round(1 - trl["real_tokens"] / trl["padded_tokens"], 3),
        "chatalign_forwards": ours["forwards"], "trl_forwards": trl["forwards"],
        "chatalign_final_loss": round(ours["final_loss"], 4), "trl_final_loss": round(trl["final_loss"], 4),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", choices=(*WORKLOADS, "both"), default="both")
    p.add_argument("--quick", action="store_true", help="8 pairs, batch 4, 2 steps (each workload)")
    p.add_argument("--batch", type=int, default=None,
                   help="pairs per optimizer step (default: 16, or 4 with --quick)")
    p.add_argument("--steps", type=int, default=None,
                   help="optimizer steps (default: quickstart 2, reference 1; 2 with --quick)")
    p.add_argument("--row-tokens", type=int, default=None,
                   help="chatalign's packed row budget (default: 2 x max-seq-len, the least that holds any pair; "
                        "attention is per sequence, but on CPU rows much longer than that run their "
                        "elementwise ops out of cache)")
    p.add_argument("--max-seq-len", type=int, default=None, help="tokens per side (default: quickstart 512, "
                   "reference 1024, which is also where its lengths are cut)")
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--repeat", type=int, default=1, help="run each setting this many times, alternating")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--trl-micro-batch", type=int, default=None,
                   help="pairs per TRL forward, the rest by gradient accumulation (default: quickstart 16, "
                        "reference 4: 16 padded reference pairs at once run out of 24 GB)")
    p.add_argument("--side", choices=("chatalign", "trl"), help=argparse.SUPPRESS)  # child mode
    argv = sys.argv[1:]
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.side:
        child_main(args)
        return
    for workload in WORKLOADS if args.workload == "both" else (args.workload,):
        print(json.dumps(run_workload(workload, args, argv)), flush=True)


if __name__ == "__main__":
    main()
