"""SFT training throughput: chatalign's packed loop vs TRL 1.16 `SFTTrainer` (default, packed), one run.

Same model (the embedded SmolLM2-135M-Instruct, fp32, CPU, no gradient checkpointing), same data (the first
N conversations of data/quickstart/sft_train.jsonl, tokenized once by chatalign with assistant-only loss
masks), one epoch over them in the same number of AdamW optimizer steps (same lr, betas, weight decay,
cosine schedule, grad clip 1.0). Each setting runs in its own subprocess, so peak RSS is per setting.

  trl_default   SFTTrainer, no packing: batches of whole examples padded to the longest one
  trl_packed    SFTTrainer, packing=True, packing_strategy="bfd" (padding-free), max_length=seq_len
  chatalign     chatalign.sft's machinery: encode_conversations -> pack_examples -> step_plan ->
                PackedLMLoss -> chatalign.training.loop.train (single process, torch AdamW)

TRL gets pre-tokenized rows: `input_ids` plus `assistant_masks` from chatalign.text.masks.encode_chat.
TRL 1.16 builds `labels` from an `assistant_masks` column whatever the dataset's kind (`_prepare_dataset`,
"Building labels"); a `completion_mask` column counts only with completion_only_loss. Each TRL child checks
that: trained-token counts must equal chatalign's, and TRL's loss on its first training row must equal
PackedLMLoss on the same tokens (printed as `mask_check`).

tokens_per_s counts real (non-pad) tokens fed to the model per second of training wall time; model load,
tokenization and TRL's dataset preparation are outside the clock. Packed rows hold whole examples, so a
packed step carries N/steps examples on average rather than exactly (TRL default: exactly).

    .venv/bin/python bench/sft_vs_trl.py                 # 48 examples, 3 steps (12-30 min on the busy 2-core box)
    .venv/bin/python bench/sft_vs_trl.py --quick         # 12 examples, 1 step: a smoke test
    .venv/bin/python bench/sft_vs_trl.py --repeat 2      # each setting twice, interleaved; medians reported
    .venv/bin/python bench/sft_vs_trl.py --settings chatalign --profile torch   # where our time goes
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from child_process import run_measured  # bench/ is on sys.path when this script runs

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "quickstart" / "sft_train.jsonl"
SETTINGS = ("trl_default", "trl_packed", "chatalign")
RESULT_TAG = "BENCH_RESULT "
TARGETS = {"trl_default": 3.0, "trl_packed": 2.0}  # from the issue: ours / TRL on CPU


# ---------------------------------------------------------------- shared by every setting

def sft_config(args):
    """The SFT stage config every setting takes its data, optimizer and sequence settings from."""
    from chatalign.sft.config import SFTConfig

    return SFTConfig(
        output_dir="unused", data={"train": str(args.data), "max_rows": args.n_examples},
        model={"name": "embedded", "dtype": "float32", "gradient_checkpointing": False},
        train={"seq_len": args.seq_len, "epochs": 1, "micro_batch_rows": 1, "global_batch_rows": 1, "seed": 0},
        checkpoint={"every_steps": 10**9},  # no checkpoint inside the timed loop (TRL: save_strategy="no")
    )


def encoded(cfg):
    """Tokenizer and (input_ids, loss_mask) rows through the SFT stage's own `prepare`."""
    from chatalign.sft.run import prepare

    return prepare(cfg)


def load_model():
    from chatalign.models import load_causal_lm

    model = load_causal_lm("embedded", dtype="float32")
    model.config.use_cache = False  # packed rows need it (per-document attention); TRL forces it as well
    return model


def micro_and_accum(per_step: int, max_micro: int = 8) -> tuple[int, int]:
    """Split `per_step` examples into micro-batch x accumulation, micro as large as possible up to `max_micro`."""
    micro = max(d for d in range(1, min(per_step, max_micro) + 1) if per_step % d == 0)
    return micro, per_step // micro


# ---------------------------------------------------------------- TRL settings (run in a child)

class CountingCollator:
    """Wraps TRL's collator (set on the trainer after init: TRL refuses a custom one when padding-free)."""

    def __init__(self, inner):
        self.inner = inner
        self.real = self.slots = self.trained = self.batches = 0

    def __call__(self, examples):
        batch = self.inner(examples)
        ids = batch["input_ids"]
        # padding-free batches carry no attention mask: one flat row without pad tokens
        self.real += int(batch["attention_mask"].sum()) if "attention_mask" in batch else ids.numel()
        self.slots += ids.numel()
        self.trained += int((batch["labels"][:, 1:] != -100).sum())  # the model shifts labels by one
        self.batches += 1
        return batch


def chatalign_loss_on(model, pairs) -> float:
    """Per-trained-token NLL of chatalign's PackedLMLoss on the given (input_ids, loss_mask) examples, one row."""
    import torch

    from chatalign.text.packing import build_row, collate_rows
    from chatalign.training.lm_loss import PackedLMLoss

    row = build_row(pairs, list(range(len(pairs))))
    with torch.no_grad():
        return float(PackedLMLoss(model)(**collate_rows([row]))) / max(row.n_trained, 1)


def trl_mask_check(trainer, model, by_ids: dict, expected_trained: int) -> dict:
    """Does TRL train exactly our assistant tokens? Label counts over its prepared data, and the loss of its
    first training row next to PackedLMLoss on the same examples (the same number iff masks and per-document
    attention agree)."""
    import torch

    data = trainer.train_dataset
    trl_trained = 0
    for row in data:
        labels = row["labels"]
        starts, pos = set(), 0
        for n in row.get("seq_lengths") or [len(labels)]:
            starts.add(pos)  # a document's first token has no target inside the document
            pos += n
        trl_trained += sum(1 for t, y in enumerate(labels) if y != -100 and t not in starts)
    first = data[0]
    lengths = first.get("seq_lengths") or [len(first["input_ids"])]
    pieces, pos = [], 0
    for n in lengths:
        pieces.append(tuple(first["input_ids"][pos:pos + n]))
        pos += n
    pairs = [(list(p), by_ids[p]) for p in pieces]
    batch = trainer.data_collator([first])
    model.eval()
    with torch.no_grad():
        trl_loss = float(trainer.compute_loss(model, dict(batch)))
    ours = chatalign_loss_on(model, pairs)
    model.train()
    trainer._metrics["eval"].clear()  # the check ran in eval mode: keep it out of the training log
    return {"trained_tokens_trl_labels": trl_trained, "trained_tokens_chatalign": expected_trained,
            "labels_match": trl_trained == expected_trained, "first_row_examples": len(pairs),
            "loss_trl": round(trl_loss, 6), "loss_chatalign": round(ours, 6),
            "loss_abs_diff": abs(trl_loss - ours)}


def run_trl(args, packed: bool) -> dict:
    import datasets
    import torch
    from transformers import TrainerCallback
    from trl import SFTConfig as TRLSFTConfig
    from trl import SFTTrainer
    from trl.data_utils import pack_dataset

    datasets.disable_progress_bars()
    cfg = sft_config(args)
    tok, enc = encoded(cfg)
    examples = enc.examples
    by_ids = {tuple(ids): list(mask) for ids, mask in examples}
    ds = datasets.Dataset.from_dict({"input_ids": [list(i) for i, _ in examples],
                                     "assistant_masks": [list(m) for _, m in examples]})
    if packed:
        # rows per step so that one epoch of TRL's own bfd packing takes `steps` optimizer steps
        n_rows = len(pack_dataset(ds.select_columns(["input_ids"]), args.seq_len, "bfd"))
        micro, accum = 1, math.ceil(n_rows / args.steps)
    else:
        micro, accum = micro_and_accum(len(examples) // args.steps)
    model = load_model()
    opt = cfg.optim
    out_dir = tempfile.mkdtemp(prefix="bench-trl-")
    targs = TRLSFTConfig(
        output_dir=out_dir, per_device_train_batch_size=micro, gradient_accumulation_steps=accum,
        num_train_epochs=1, learning_rate=opt.lr, weight_decay=opt.weight_decay, adam_beta1=opt.betas[0],
        adam_beta2=opt.betas[1], adam_epsilon=opt.eps, max_grad_norm=opt.grad_clip, lr_scheduler_type="cosine",
        warmup_steps=0, optim="adamw_torch", bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=True,
        max_length=args.seq_len, packing=packed, packing_strategy="bfd", save_strategy="no", eval_strategy="no",
        report_to=[], logging_steps=1, disable_tqdm=True, dataloader_num_workers=0, seed=cfg.train.seed)

    class WallClock(TrainerCallback):
        t0 = t1 = 0.0

        def on_train_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_train_end(self, *a, **k):
            self.t1 = time.perf_counter()

    clock = WallClock()
    trainer = SFTTrainer(model=model, args=targs, train_dataset=ds, processing_class=tok, callbacks=[clock])
    check = trl_mask_check(trainer, model, by_ids, enc.stats["trained_tokens"])
    counter = CountingCollator(trainer.data_collator)
    trainer.data_collator = counter
    with profiled(args.profile, args.profile_out):
        cpu0 = time.process_time()
        trainer.train()
        cpu_seconds = time.process_time() - cpu0
    shutil.rmtree(out_dir, ignore_errors=True)
    seconds = clock.t1 - clock.t0
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"setting": "trl_packed" if packed else "trl_default", "seconds": seconds, "cpu_seconds": cpu_seconds,
            "real_tokens": counter.real, "token_slots": counter.slots, "trained_tokens": counter.trained, "steps": trainer.state.global_step,
            "examples": len(examples), "micro_batch": micro, "grad_accum": accum, "batches": counter.batches,
            "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
            "torch_threads": torch.get_num_threads(), "mask_check": check}


# ---------------------------------------------------------------- chatalign (run in a child)

def run_chatalign(args) -> dict:
    import torch

    from chatalign.runs import RunDir
    from chatalign.text.packing import IGNORE, collate_rows, pack_examples, step_plan
    from chatalign.training.distributed import DistContext
    from chatalign.training.lm_loss import PackedLMLoss
    from chatalign.training.loop import TrainJob, train

    cfg = sft_config(args)
    _, enc = encoded(cfg)
    model = load_model()
    rows = pack_examples(enc.examples, cfg.train.seq_len)
    rows_per_step = math.ceil(len(rows) / args.steps)
    plan = step_plan(len(rows), rows_per_step, cfg.train.epochs, cfg.train.seed)
    counts = {"real": 0, "trained": 0, "batches": 0}

    def counting_collate(items):
        batch = collate_rows(items)
        counts["real"] += batch["input_ids"].numel()  # padding-free: every position is a real token
        counts["trained"] += int((batch["labels"] != IGNORE).sum())
        counts["batches"] += 1
        return batch

    job = TrainJob(loss_module=PackedLMLoss(model), items=rows, weights=[r.n_trained for r in rows],
                   collate=counting_collate, plan=plan, micro_batch_items=cfg.train.micro_batch_rows, unit="tok")
    # the same untimed no-grad forward the TRL children run for their mask check (first-call warm-up alike)
    with torch.no_grad():
        job.loss_module(**collate_rows([rows[plan[0][0]]]))
    with tempfile.TemporaryDirectory(prefix="bench-chatalign-") as tmp:
        run = RunDir(Path(tmp) / "run", "sft")
        with profiled(args.profile, args.profile_out):
            t0, cpu0 = time.perf_counter(), time.process_time()
            last = train(job, cfg.optim, cfg.checkpoint, cfg.deepspeed, run, DistContext(), resume=False,
                         progress=False, desc="sft")
            seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
        first = run.read_metrics()[0]["loss"]
    return {"setting": "chatalign", "seconds": seconds, "cpu_seconds": cpu_seconds, "real_tokens": counts["real"],
            "token_slots": counts["real"], "trained_tokens": counts["trained"], "steps": len(plan),
            "examples": len(enc.examples), "packed_rows": len(rows), "micro_batch": cfg.train.micro_batch_rows,
            "rows_per_step": rows_per_step, "batches": counts["batches"], "first_loss": first,
            "last_loss": last.get("loss"), "torch_threads": torch.get_num_threads()}


@contextlib.contextmanager
def profiled(kind: str, out: str | None):
    """Profile the timed training section when asked: the table goes to stderr (and to `out`)."""
    if kind == "none":
        yield
        return
    if kind == "cprofile":
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        yield
        prof.disable()
        if out:
            prof.dump_stats(out)
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(45)
        text = buf.getvalue()
    else:
        import torch.profiler as tp

        with tp.profile(activities=[tp.ProfilerActivity.CPU]) as prof:
            yield
        averages = prof.key_averages()
        text = (averages.table(sort_by="self_cpu_time_total", row_limit=30) + "\n"
                + averages.table(sort_by="cpu_time_total", row_limit=30))
        if out:
            Path(out).write_text(text)
    sys.stderr.write(text + "\n")


# ---------------------------------------------------------------- parent: one subprocess per setting

def child_main(args) -> None:
    result = run_chatalign(args) if args.setting == "chatalign" else run_trl(args, args.setting == "trl_packed")
    print(RESULT_TAG + json.dumps(result), flush=True)


def run_child(setting: str, args) -> dict:
    """Run one setting in a fresh interpreter; its peak RSS comes from wait4 on that child alone."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--setting", setting,
           "--n-examples", str(args.n_examples), "--steps", str(args.steps), "--seq-len", str(args.seq_len),
           "--data", str(args.data), "--profile", args.profile]
    if args.profile_out:
        cmd += ["--profile-out", f"{args.profile_out}.{setting}"]
    load_before = os.getloadavg()[0]
    out, code, peak = run_measured(cmd)
    lines = [ln[len(RESULT_TAG):] for ln in out.splitlines() if ln.startswith(RESULT_TAG)]
    if code != 0 or not lines:
        sys.stderr.write(out)
        raise SystemExit(f"setting {setting} failed (exit {code})")
    result = json.loads(lines[-1])
    result["peak_rss_gib"] = peak
    # the machine is shared: the 1-minute load average around a setting says how noisy its number is
    result["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return result


def summary_line(r: dict) -> dict:
    slots = r["token_slots"]
    return {"setting": r["setting"], "tokens_per_s": round(r["real_tokens"] / r["seconds"], 2),
            "real_tokens": r["real_tokens"], "trained_tokens": r["trained_tokens"],
            "trained_tokens_per_s": round(r["trained_tokens"] / r["seconds"], 2),
            "padding_fraction": round(1 - r["real_tokens"] / slots, 4) if slots else 0.0,
            "peak_rss_gib": r["peak_rss_gib"], "seconds": round(r["seconds"], 2),
            # CPU seconds of the training process (all its threads): less sensitive to a busy shared machine
            "cpu_seconds": round(r["cpu_seconds"], 2),
            "tokens_per_cpu_s": round(r["real_tokens"] / r["cpu_seconds"], 2), "steps": r["steps"],
            "examples": r["examples"], "first_loss": r["first_loss"], "last_loss": r["last_loss"],
            "loadavg_1m": r["loadavg_1m"], **({"mask_check": r["mask_check"]} if "mask_check" in r else {})}


def median_line(lines: list[dict]) -> dict:
    """Median throughput over repeats; the other fields from the repeat closest to it."""
    med = statistics.median(x["tokens_per_s"] for x in lines)
    best = min(lines, key=lambda x: abs(x["tokens_per_s"] - med))
    return {**best, "tokens_per_s": round(med, 2), "repeats": len(lines),
            "tokens_per_s_all": [x["tokens_per_s"] for x in lines],
            "peak_rss_gib": max(x["peak_rss_gib"] for x in lines)}


def final_line(by_setting: dict[str, dict], runs: dict[str, list[dict]]) -> dict:
    ours = by_setting.get("chatalign")
    out: dict = {"summary": "ratios of real tokens/s, chatalign / TRL"}
    for peer, target in TARGETS.items():
        if ours and peer in by_setting:
            ratio = ours["tokens_per_s"] / by_setting[peer]["tokens_per_s"]
            out[f"ours_vs_{peer}"] = round(ratio, 3)
            out[f"target_vs_{peer}"] = target
            out[f"met_vs_{peer}"] = ratio >= target
            if len(runs[peer]) > 1:  # ratios within one repeat share its machine load: the steadier numbers
                out[f"ours_vs_{peer}_per_repeat"] = [round(a["tokens_per_s"] / b["tokens_per_s"], 3)
                                                     for a, b in zip(runs["chatalign"], runs[peer])]
    present = list(by_setting.values())
    out["same_steps"] = len({x["steps"] for x in present}) == 1
    out["same_real_tokens"] = len({x["real_tokens"] for x in present}) == 1
    out["same_trained_tokens"] = len({x["trained_tokens"] for x in present}) == 1
    checks = [x["mask_check"] for x in present if "mask_check" in x]
    if checks:  # TRL trained exactly our assistant tokens, else the comparison is void
        out["trl_masks_verified"] = all(c["labels_match"] and c["loss_abs_diff"] < 1e-3 for c in checks)
    return out


def versions() -> dict:
    from importlib.metadata import version

    return {name: version(name) for name in ("torch", "transformers", "trl")}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-examples", type=int, default=48, help="first N conversations of the data file")
    ap.add_argument("--steps", type=int, default=3, help="optimizer steps (one epoch over the N examples)")
    ap.add_argument("--seq-len", type=int, default=1024, help="packed row length (TRL max_length too)")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--quick", action="store_true", help="12 examples, 1 step: checks the script runs")
    ap.add_argument("--repeat", type=int, default=1, help="run each setting this many times, interleaved")
    ap.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated subset of " + ",".join(SETTINGS))
    ap.add_argument("--profile", choices=("none", "cprofile", "torch"), default="none",
                    help="profile each setting's timed training section (printed to stderr)")
    ap.add_argument("--profile-out", default=None, help="also write each raw profile to PREFIX.<setting>")
    ap.add_argument("--setting", choices=SETTINGS, help=argparse.SUPPRESS)  # child mode
    args = ap.parse_args(argv)
    if args.quick:
        args.n_examples, args.steps = 12, 1
    if args.n_examples % args.steps:
        ap.error(f"--n-examples ({args.n_examples}) must be a multiple of --steps ({args.steps}): "
                 "TRL's default batches hold exactly n/steps examples")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.setting:
        child_main(args)
        return
    wanted = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = set(wanted) - set(SETTINGS)
    if unknown:
        raise SystemExit(f"unknown settings: {', '.join(sorted(unknown))}")
    print(json.dumps({"bench": "sft_vs_trl", "n_examples": args.n_examples, "steps": args.steps,
                      "seq_len": args.seq_len, "repeat": args.repeat, "cpus": os.cpu_count(), **versions()}),
          flush=True)
    runs: dict[str, list[dict]] = {s: [] for s in wanted}
    for rep in range(args.repeat):
        for setting in wanted:
            line = summary_line(run_child(setting, args))
            if args.repeat > 1:
                line["repeat_index"] = rep
            runs[setting].append(line)
            print(json.dumps(line), flush=True)
    by_setting = {s: (median_line(v) if len(v) > 1 else v[0]) for s, v in runs.items()}
    if args.repeat > 1:
        for line in by_setting.values():
            print(json.dumps({**line, "median_of": args.repeat}), flush=True)
    print(json.dumps(final_line(by_setting, runs)), flush=True)


if __name__ == "__main__":
    main()
