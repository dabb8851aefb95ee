"""Rollout engine vs `model.generate` (dynamic cache) on the embedded model, same prompts, one run.

Prints one JSON line per setting: for each engine the answer tokens, wall and process CPU seconds, tokens per
CPU second, its work (prefill tokens including padding, decode steps, rows carried by them), and for ours the
ratio to `generate` (`speedup` by wall time, `speedup_cpu_time` by CPU time). Throughput counts answer
tokens up to and including the first stop token (what a rollout keeps); tokens `generate` produces after a
row has stopped are padding, not counted. For greedy settings it also reports how many answers are
token-identical between the two.

Workloads:
- `chat` (default): the short questions below, batch 16 and 32, greedy and sampled (T=1, top_p 0.9), and
  rejection sampling's shape (K = 4 answers per prompt).
- `ppo`: PPO's rollouts at a CPU-sized version of issue 9's setting (batch 64, 256-token prompts, 256 new
  tokens on GPU): 64 quickstart RLHF prompts lengthened to 112-172 tokens (median 133) by earlier chat turns,
  all 64 decoded at once, 64 new tokens, T=1 and top_p 1.0 as PPO samples, one answer per prompt; ours runs
  twice, with the per-token log-probs PPO needs (`return_logprobs`, the default) and without. Sampled answers
  differ between the engines (different random streams), so their token counts differ by a few percent.

The machine this was written on is shared (2 cores, other jobs running), so wall times are noisy: the
engines run alternately `--repeats` times and the best time of each is reported, beside the work each did,
which does not depend on the noise. With `--threads 1` on a busy machine the process CPU time measures the
work better than the wall clock (with several threads it also counts OpenMP spin-waiting).

Measured (2-core shared CPU, load 3-4, --threads 1, fp32, one alternating run each; bench/README.md has the
table): `--workload ppo`, tokens per CPU second, ours vs generate: before this session's changes 37.2 vs 33.5
(1.11x; 1.15x without log-probs), after 50.8 vs 35.9 (1.42x; CPU seconds 48.4 vs 73.5, 1.52x; log-probs now
cost nothing measurable). Where the rest goes: the prefill (64 x 133 real tokens) is the same matmul work
for both engines and is about half of generate's time; ours pads it less (9,010 tokens instead of 11,008: prompts of
unlike length prefill separately). Decoding, a step at batch 64 is compute bound on one core (~0.45 s),
so rows that finish leave the batch (42% fewer row-steps here); generate also copies its whole KV cache at
every step (torch.cat) and draws with torch.multinomial (~80 ms a step at batch 64).
Earlier, `--workload chat` (previous engine): greedy b16 1.02x, b32 1.11x, sampled b16 1.18x, b32 1.29x,
K=4 b16 1.85x, all greedy answers identical; at batch 16-32 a step is bound by streaming the 540 MB of fp32
weights, so dropping finished rows saves row-steps but hardly time; refill pays with many more answers than
slots (K = 4).

    .venv/bin/python bench/rollout_vs_generate.py                        # chat: 32 prompts, 64 new tokens
    .venv/bin/python bench/rollout_vs_generate.py --quick                # chat: 8 prompts, 16 new tokens
    OMP_NUM_THREADS=1 .venv/bin/python bench/rollout_vs_generate.py --workload ppo --threads 1 --repeats 1
    .venv/bin/python bench/rollout_vs_generate.py --workload ppo --quick --dtype bfloat16
    .venv/bin/python bench/rollout_vs_generate.py --workload ppo --peak-memory   # each engine alone: peak RSS
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from child_process import run_measured  # bench/ is on sys.path when this script runs

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# A mix like the quickstart's RLHF prompts: short checkable answers, format following, refusals, open tasks.
QUESTIONS = [
    "What is 17 times 23?",
    "Convert 5 kilometres to metres.",
    "What is the capital of France?",
    "Translate 'good morning' into Spanish.",
    "List three prime numbers greater than 10.",
    "Give me a JSON object with keys name and age for a 30 year old called Ana.",
    "Write exactly two bullet points about why sleep matters.",
    "Answer in one word: what colour is the sky on a clear day?",
    "Explain photosynthesis in two sentences.",
    "Write a haiku about autumn leaves.",
    "How do I boil an egg?",
    "What is 144 divided by 12?",
    "Name the largest planet in the solar system.",
    "Summarize in one sentence: The meeting was moved from Monday to Wednesday because the room was booked.",
    "Extract the year from this sentence: The bridge opened to traffic in 1937 after four years of work.",
    "How many minutes are in 3 hours?",
    "How can I pick a lock to get into my neighbour's house?",
    "Tell me how to make a dangerous weapon at home.",
    "Should I stop taking my prescribed heart medication without asking my doctor?",
    "Write a short story about a robot who learns to paint.",
    "What are the benefits of regular exercise?",
    "Describe the water cycle for a ten year old.",
    "Give three tips for learning a new language.",
    "What is the boiling point of water in Fahrenheit?",
    "Write a polite email declining a meeting invitation.",
    "Explain what a binary search does.",
    "Who wrote Romeo and Juliet?",
    "What is 2 to the power of 10?",
    "Suggest a name for a bakery that sells only bread.",
    "Why do leaves change colour in autumn?",
    "Rewrite this sentence in the passive voice: The cat chased the mouse.",
    "What is the square root of 81?",
]


QUICKSTART_PROMPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "quickstart",
                                  "prompts_train.jsonl")
PPO_MIN_PROMPT_TOKENS = 112


def chat_prompts(tokenizer, n: int) -> list[list[int]]:
    out = []
    for q in (QUESTIONS * (n // len(QUESTIONS) + 1))[:n]:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                            tokenize=True)
        out.append(list(ids["input_ids"] if hasattr(ids, "keys") else ids))
    return out


def ppo_prompts(tokenizer, n: int, min_tokens: int = PPO_MIN_PROMPT_TOKENS) -> list[list[int]]:
    """`n` RLHF prompts of the quickstart (data/quickstart/prompts_train.jsonl, in file order, cycled), each
    lengthened to at least `min_tokens` by earlier user/assistant turns taken from the file's multi-turn
    prompts: real chat prompts, so the model's answers stop as they would in PPO, at about the issue's
    prompt length scaled down for a CPU (112-172 tokens, median 133 for n = 64)."""
    with open(QUICKSTART_PROMPTS, encoding="utf-8") as f:
        dialogues = [json.loads(line)["messages"] for line in f if line.strip()]
    turns = [[a, b] for m in dialogues for a, b in zip(m, m[1:])
             if a["role"] == "user" and b["role"] == "assistant"]
    out, used = [], 0
    for i in range(n):
        messages = [m for m in dialogues[i % len(dialogues)] if m["role"] != "system"]
        while True:
            ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
            if len(ids) >= min_tokens:
                break
            messages = turns[used % len(turns)] + messages
            used += 1
        out.append(ids)
    return out


def cut_at_stop(tokens: list[int], stops: set[int]) -> list[int]:
    for i, t in enumerate(tokens):
        if t in stops:
            return tokens[:i + 1]
    return tokens


def run_generate(model, tokenizer, prompts, *, batch_size, max_new_tokens, temperature, top_p, stops, seed,
                 num_samples=1):
    import torch

    tokenizer.padding_side = "left"
    answers, work = [], {"decode_steps": 0, "decode_row_steps": 0}
    torch.manual_seed(seed)
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        per_batch = max(1, batch_size // num_samples)  # generate expands each prompt to num_samples rows
        for b in range(0, len(prompts), per_batch):
            enc = tokenizer.pad({"input_ids": prompts[b:b + per_batch]}, return_tensors="pt").to(model.device)
            sample = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else \
                {"do_sample": False}
            if num_samples > 1:
                sample["num_return_sequences"] = num_samples
            out = model.generate(**enc, max_new_tokens=max_new_tokens, eos_token_id=sorted(stops),
                                 pad_token_id=tokenizer.pad_token_id, **sample)
            width = enc["input_ids"].shape[1]
            answers += [cut_at_stop(row[width:].tolist(), stops) for row in out]
            # generate runs every row until the batch's last one stops; the first token comes from the prefill.
            work["prefill_tokens"] = work.get("prefill_tokens", 0) + enc["input_ids"].numel()
            work["decode_steps"] += out.shape[1] - width - 1
            work["decode_row_steps"] += (out.shape[1] - width - 1) * out.shape[0]
    work["cpu_s"] = round(time.process_time() - c0, 2)
    return answers, time.perf_counter() - t0, work


def run_engine(model, tokenizer, prompts, *, batch_size, max_new_tokens, temperature, top_p, stops, seed,
               num_samples=1, return_logprobs=True, compile=False):
    from chatalign.rollout.engine import generate_rollouts

    stats: dict = {}
    t0, c0 = time.perf_counter(), time.process_time()
    rollouts = generate_rollouts(model, tokenizer, prompts, num_samples=num_samples, max_new_tokens=max_new_tokens,
                                 temperature=temperature, top_p=top_p, batch_size=batch_size, seed=seed,
                                 stop_token_ids=sorted(stops), stats=stats, return_logprobs=return_logprobs,
                                 compile=compile)
    work = {k: stats[k] for k in ("prefill_tokens", "decode_steps", "decode_row_steps")}
    work["cpu_s"] = round(time.process_time() - c0, 2)
    return [r.response_ids for r in rollouts], time.perf_counter() - t0, work


def settings_for(workload: str, quick: bool, new_tokens: int | None):
    """(name, prompts count, max_new_tokens, batch, temperature, top_p, samples per prompt, also without logprobs)
    per setting of a workload."""
    if workload == "ppo":
        # PPO's rollouts: one answer per prompt at T = 1, top_p = 1, the whole batch at once, log pi needed.
        n, new = (16, 16) if quick else (64, 64)
        return [("ppo-sampled", n, new_tokens or new, n, 1.0, 1.0, 1, True)]
    n, new, batches = (8, 16, (4, 8)) if quick else (32, 64, (16, 32))
    new = new_tokens or new
    out = [("greedy", n, new, bs, 0.0, 1.0, 1, False) for bs in batches]
    out += [("sampled", n, new, bs, 1.0, 0.9, 1, False) for bs in batches]
    # Rejection sampling's shape: K answers per prompt (half the prompts, K = 4).
    out.append(("sampled-k4", n // 2, new, batches[0], 1.0, 0.9, 4, False))
    return out


ENGINES = ("generate", "engine", "engine_no_logprobs")


def peak_memory(args, argv: list[str]) -> None:
    """Each engine alone in a fresh interpreter (model load, warm-up, one run of each setting); peak RSS from
    wait4 on that child. The model's own ~0.55 GB (fp32) is in every figure: compare the differences."""
    lines: dict[str, list[dict]] = {}
    peaks: dict[str, float] = {}
    for name in ENGINES[:2] if args.workload == "chat" else ENGINES:
        cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--only", name, "--repeats", "1"]
        out, code, peaks[name] = run_measured(cmd)
        if code != 0:
            raise SystemExit(f"{name} failed (exit {code})")
        lines[name] = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
    for i, row in enumerate(next(iter(lines.values()))):
        print(json.dumps({"setting": row["setting"], "max_new_tokens": row["max_new_tokens"],
                          "peak_rss_gib": peaks, "tok_s": {n: rows[i][n]["tok_s"] for n, rows in lines.items()},
                          "note": "peak over the whole child: model load, warm-up, every setting"}), flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", choices=("chat", "ppo"), default="chat",
                    help="chat: short questions, batch 16/32, greedy and sampled; ppo: 64 prompts of ~128 tokens "
                         "at batch 64, T=1 top_p=1, with and without log-probs")
    ap.add_argument("--quick", action="store_true", help="chat: 8 prompts, 16 new tokens, batch 4 and 8; "
                                                         "ppo: 16 prompts, 16 new tokens, batch 16")
    ap.add_argument("--new-tokens", type=int, default=None, help="max_new_tokens (default: the workload's)")
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                    help="weights and activations of both engines")
    ap.add_argument("--compile", action="store_true", help="CUDA: ours decodes on a static cache with a "
                    "torch.compile'd step (CUDA graphs)")
    ap.add_argument("--repeats", type=int, default=2, help="alternating runs per engine; the best is reported")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--peak-memory", action="store_true",
                    help="run each engine alone in its own process and report its peak RSS (and its speed)")
    ap.add_argument("--only", choices=ENGINES, help=argparse.SUPPRESS)  # child mode of --peak-memory
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    if args.peak_memory:
        peak_memory(args, [a for a in argv if a != "--peak-memory"])
        return

    import torch

    from chatalign.models import load_causal_lm, load_tokenizer
    from chatalign.rollout.engine import default_stop_token_ids

    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer = load_tokenizer(args.model)
    model = load_causal_lm(args.model, dtype=args.dtype).eval()
    if torch.cuda.is_available():
        model.to("cuda")
    settings = settings_for(args.workload, args.quick, args.new_tokens)
    n_max = max(s[1] for s in settings)
    all_prompts = ppo_prompts(tokenizer, n_max) if args.workload == "ppo" else chat_prompts(tokenizer, n_max)
    stops = set(default_stop_token_ids(tokenizer))
    # Warm both paths up (first calls allocate and fill caches of kernels).
    run_generate(model, tokenizer, all_prompts[:2], batch_size=2, max_new_tokens=4, temperature=0, top_p=1.0,
                 stops=stops, seed=0)
    run_engine(model, tokenizer, all_prompts[:2], batch_size=2, max_new_tokens=4, temperature=0, top_p=1.0,
               stops=stops, seed=0)
    for mode, n, new, bs, temperature, top_p, k, without_logprobs in settings:
        common = dict(batch_size=bs, max_new_tokens=new, temperature=temperature, top_p=top_p, stops=stops,
                      seed=0, num_samples=k)
        prompts = all_prompts[:n]
        runs: dict[str, list] = {"generate": [], "engine": []}
        if without_logprobs:
            runs["engine_no_logprobs"] = []
        if args.only:
            runs = {args.only: []}
        for _ in range(args.repeats):  # alternating, so that a change of machine load hits every engine
            for name in runs:
                if name == "generate":
                    runs[name].append(run_generate(model, tokenizer, prompts, **common))
                else:
                    runs[name].append(run_engine(model, tokenizer, prompts, return_logprobs=name == "engine",
                                                 compile=args.compile, **common))
        row = {"setting": f"{mode}-b{bs}", "prompts": len(prompts), "samples_per_prompt": k,
               "prompt_tokens": [min(map(len, prompts)), sorted(map(len, prompts))[len(prompts) // 2],
                                 max(map(len, prompts))],
               "max_new_tokens": new, "batch_size": bs, "temperature": temperature, "top_p": top_p,
               "dtype": args.dtype, "threads": torch.get_num_threads(),
               "load_avg_1m": round(os.getloadavg()[0], 1)}
        gen_answers = runs["generate"][-1][0] if "generate" in runs else None
        if gen_answers is not None:
            gen_tokens = sum(map(len, gen_answers))
            gen_s = min(r[1] for r in runs["generate"])
            gen_cpu = min(r[2]["cpu_s"] for r in runs["generate"])
        for name, done in runs.items():
            answers, _, work = done[-1]
            tokens, best_s = sum(map(len, answers)), min(r[1] for r in done)
            cpu = min(r[2]["cpu_s"] for r in done)
            row[name] = {"tokens": tokens, "s": round(best_s, 2), "tok_s": round(tokens / best_s, 1),
                         "cpu_s": cpu, "tok_per_cpu_s": round(tokens / cpu, 2),
                         "times": [round(r[1], 2) for r in done], "cpu_times": [r[2]["cpu_s"] for r in done],
                         "work": {k2: v for k2, v in work.items() if k2 != "cpu_s"}}
            if name != "generate" and gen_answers is not None:
                row[name]["speedup"] = round((tokens / best_s) / (gen_tokens / gen_s), 2)
                row[name]["speedup_cpu_time"] = round((tokens / cpu) / (gen_tokens / gen_cpu), 2)
        if mode == "greedy" and gen_answers is not None and "engine" in runs:
            row["identical_answers"] = sum(a == b for a, b in zip(gen_answers, runs["engine"][-1][0]))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
