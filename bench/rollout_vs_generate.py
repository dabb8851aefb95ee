"""Rollout engine vs `model.generate` (dynamic cache) on the embedded model, same prompts, one run.

Prints one JSON line per setting. Throughput counts answer tokens up to and including the first stop token
(what a rollout keeps); tokens `generate` produces after a row has stopped are padding, not counted.
For greedy settings it also reports how many answers are token-identical between the two.

The machine this was written on is shared (2 cores, other jobs running), so wall times are noisy: the two
engines run alternately `--repeats` times and the best time of each is reported, beside the work each did
(decode steps, and rows carried by them), which does not depend on the noise. The process CPU time is
reported too: with `--threads 1` on a busy machine it measures the work better than the wall clock (with
several threads it also counts OpenMP spin-waiting).

Measured (2-core shared CPU, load 5-8, --threads 1, fp32, tokens/s engine vs generate): greedy b16 30.3 vs
29.7 (1.02x), greedy b32 38.1 vs 34.3 (1.11x; 1.19x in CPU time), sampled b16 21.6 vs 18.3 (1.18x), sampled
b32 29.5 vs 22.8 (1.29x), K=4 samples b16 29.1 vs 15.7 (1.85x). All 32 greedy answers identical.
Why not more at K=1: a decode step here is bound by streaming the 540 MB of fp32 weights, so its cost hardly
depends on how many rows it carries; dropping finished rows cut the row-steps by 27% (2016 -> 1474) but not
the steps, which are set by the answers that run to max_new_tokens (17 of 32 here: two waves of 16 slots
need 126 steps whatever the scheduler). Refill pays when there are many more answers than slots (K = 4).

    .venv/bin/python bench/rollout_vs_generate.py            # 32 prompts, 64 new tokens, batch 16 and 32
    .venv/bin/python bench/rollout_vs_generate.py --quick    # 8 prompts, 16 new tokens, batch 4 and 8
"""

from __future__ import annotations

import argparse
import json
import os
import time

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


def chat_prompts(tokenizer, n: int) -> list[list[int]]:
    out = []
    for q in (QUESTIONS * (n // len(QUESTIONS) + 1))[:n]:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                            tokenize=True)
        out.append(list(ids["input_ids"] if hasattr(ids, "keys") else ids))
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
            enc = tokenizer.pad({"input_ids": prompts[b:b + per_batch]}, return_tensors="pt")
            sample = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else \
                {"do_sample": False}
            if num_samples > 1:
                sample["num_return_sequences"] = num_samples
            out = model.generate(**enc, max_new_tokens=max_new_tokens, eos_token_id=sorted(stops),
                                 pad_token_id=tokenizer.pad_token_id, **sample)
            width = enc["input_ids"].shape[1]
            answers += [cut_at_stop(row[width:].tolist(), stops) for row in out]
            # generate runs every row until the batch's last one stops; the first token comes from the prefill.
            work["decode_steps"] += out.shape[1] - width - 1
            work["decode_row_steps"] += (out.shape[1] - width - 1) * out.shape[0]
    work["cpu_s"] = round(time.process_time() - c0, 2)
    return answers, time.perf_counter() - t0, work


def run_engine(model, tokenizer, prompts, *, batch_size, max_new_tokens, temperature, top_p, stops, seed,
               num_samples=1):
    from chatalign.rollout import generate_rollouts

    stats: dict = {}
    t0, c0 = time.perf_counter(), time.process_time()
    rollouts = generate_rollouts(model, tokenizer, prompts, num_samples=num_samples, max_new_tokens=max_new_tokens,
                                 temperature=temperature, top_p=top_p, batch_size=batch_size, seed=seed,
                                 stop_token_ids=sorted(stops), stats=stats)
    work = {k: stats[k] for k in ("decode_steps", "decode_row_steps")}
    work["cpu_s"] = round(time.process_time() - c0, 2)
    return [r.response_ids for r in rollouts], time.perf_counter() - t0, work


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 prompts, 16 new tokens, batch 4 and 8")
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--repeats", type=int, default=2, help="alternating runs per engine; the best is reported")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = ap.parse_args(argv)

    import torch

    from chatalign.models import load_causal_lm, load_tokenizer
    from chatalign.rollout import default_stop_token_ids

    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer = load_tokenizer(args.model)
    model = load_causal_lm(args.model, dtype="float32").eval()
    n, new, batches = (8, 16, (4, 8)) if args.quick else (32, 64, (16, 32))
    all_prompts = chat_prompts(tokenizer, n)
    stops = set(default_stop_token_ids(tokenizer))
    # Warm both paths up (first calls allocate and fill caches of kernels).
    run_generate(model, tokenizer, all_prompts[:2], batch_size=2, max_new_tokens=4, temperature=0, top_p=1.0,
                 stops=stops, seed=0)
    run_engine(model, tokenizer, all_prompts[:2], batch_size=2, max_new_tokens=4, temperature=0, top_p=1.0,
               stops=stops, seed=0)
    # The last setting is rejection sampling's shape: K answers per prompt (half the prompts, K = 4).
    settings = [("greedy", 0.0, 1.0, 1, bs) for bs in batches] + [("sampled", 1.0, 0.9, 1, bs) for bs in batches]
    settings.append(("sampled-k4", 1.0, 0.9, 4, batches[0]))
    for mode, temperature, top_p, k, bs in settings:
        common = dict(batch_size=bs, max_new_tokens=new, temperature=temperature, top_p=top_p, stops=stops,
                      seed=0, num_samples=k)
        prompts = all_prompts[:n // 2] if k > 1 else all_prompts
        gen_times, eng_times, gen_cpu, eng_cpu = [], [], [], []
        for _ in range(args.repeats):
            gen_answers, gen_s, gen_work = run_generate(model, tokenizer, prompts, **common)
            eng_answers, eng_s, eng_work = run_engine(model, tokenizer, prompts, **common)
            gen_times.append(gen_s)
            eng_times.append(eng_s)
            gen_cpu.append(gen_work.pop("cpu_s"))
            eng_cpu.append(eng_work.pop("cpu_s"))
        gen_s, eng_s = min(gen_times), min(eng_times)
        gen_tokens, eng_tokens = sum(map(len, gen_answers)), sum(map(len, eng_answers))
        row = {"setting": f"{mode}-b{bs}", "prompts": len(prompts), "samples_per_prompt": k,
               "max_new_tokens": new, "batch_size": bs,
               "temperature": temperature, "top_p": top_p, "threads": torch.get_num_threads(),
               "load_avg_1m": round(os.getloadavg()[0], 1),
               "generate_tokens": gen_tokens, "generate_s": round(gen_s, 2),
               "generate_tok_s": round(gen_tokens / gen_s, 1),
               "engine_tokens": eng_tokens, "engine_s": round(eng_s, 2),
               "engine_tok_s": round(eng_tokens / eng_s, 1),
               "speedup": round((eng_tokens / eng_s) / (gen_tokens / gen_s), 2),
               "generate_cpu_s": min(gen_cpu), "engine_cpu_s": min(eng_cpu),
               "speedup_cpu_time": round((eng_tokens / min(eng_cpu)) / (gen_tokens / min(gen_cpu)), 2),
               "generate_times": [round(t, 2) for t in gen_times], "engine_times": [round(t, 2) for t in eng_times],
               "generate_work": gen_work, "engine_work": eng_work}
        if mode == "greedy":
            row["identical_answers"] = sum(a == b for a, b in zip(gen_answers, eng_answers))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
