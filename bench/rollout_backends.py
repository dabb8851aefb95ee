"""Generation backends side by side, one run: vLLM vs chatalign's native engine vs `model.generate`.

Runs in the environment that has vLLM (`./setup.sh --vllm`, then `.venv-vllm/bin/python bench/rollout_backends.py`);
on a GPU machine the same script compares the CUDA builds. Workload: PPO's rollouts as in rollout_vs_generate.py's
`ppo` workload (64 quickstart RLHF prompts lengthened to 112-172 tokens, all decoded at once, T=1, top_p 1.0, one
answer per prompt), on the embedded SmolLM2-135M-Instruct in float32 (CPU) or bfloat16 (GPU). Each engine runs in
its own process (peak RSS of that process alone, from wait4): model load, a short warm-up, then the timed run.
vLLM's start-up (engine and KV-cache allocation) is reported apart from its timed run. Throughput counts answer
tokens up to and including the first stop token. Sampled answers differ between engines (separate random
streams), so their token counts differ by a few percent.

    .venv-vllm/bin/python bench/rollout_backends.py                   # 64 prompts x 64 new tokens
    .venv-vllm/bin/python bench/rollout_backends.py --quick           # 8 prompts x 16 new tokens: does it run
    .venv-vllm/bin/python bench/rollout_backends.py --new-tokens 256  # longer answers
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from child_process import run_measured  # bench/ is on sys.path when this script runs
from rollout_vs_generate import cut_at_stop, ppo_prompts, run_engine, run_generate

ENGINES = ("vllm", "native", "generate")


def one_engine(engine: str, n: int, new_tokens: int, memory_share: float) -> dict:
    import torch

    from chatalign.embedded import embedded_model_dir
    from chatalign.models import load_causal_lm, load_tokenizer
    from chatalign.rollout.engine import default_stop_token_ids

    cuda = torch.cuda.is_available()
    dtype = "bfloat16" if cuda else "float32"
    path = str(embedded_model_dir())
    tok = load_tokenizer(path)
    prompts = ppo_prompts(tok, n)
    stops = set(default_stop_token_ids(tok))
    kw = dict(max_new_tokens=new_tokens, temperature=1.0, top_p=1.0, seed=0)
    start = 0.0
    if engine == "vllm":
        from chatalign.rollout.vllm_engine import VLLMEngine

        t0 = time.perf_counter()
        eng = VLLMEngine(path, dtype=dtype, memory_share=memory_share, max_model_len=1024)
        eng.rollouts(tok, prompts[:2], max_new_tokens=4)  # start-up and warm-up
        start = time.perf_counter() - t0
        t0 = time.perf_counter()
        rows = eng.rollouts(tok, prompts, **kw)
        wall = time.perf_counter() - t0
        answers = [cut_at_stop(r.response_ids, stops) for r in rows]
    else:
        model = load_causal_lm(path, dtype)
        if cuda:
            model.to("cuda")
        run = run_generate if engine == "generate" else run_engine
        run(model, tok, prompts[:2], batch_size=2, stops=stops, **{**kw, "max_new_tokens": 4})  # warm-up
        answers, wall, _ = run(model, tok, prompts, batch_size=n, stops=stops, **kw)
        answers = [list(a.response_ids) if hasattr(a, "response_ids") else a for a in answers]
    tokens = sum(len(a) for a in answers)
    return {"engine": engine, "device": "cuda" if cuda else "cpu", "dtype": dtype, "prompts": n,
            "new_tokens": new_tokens, "answer_tokens": tokens, "wall_s": round(wall, 2),
            "tokens_per_s": round(tokens / wall, 1), "startup_s": round(start, 1) if engine == "vllm" else None}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="8 prompts, 16 new tokens")
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--memory-share", type=float, default=0.1, help="vLLM's gpu_memory_utilization")
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    n, new = (8, 16) if args.quick else (args.prompts, args.new_tokens)
    if args.child:
        print(json.dumps(one_engine(args.child, n, new, args.memory_share)), flush=True)
        return
    results = {}
    for engine in args.engines.split(","):
        out, rc, peak = run_measured([sys.executable, os.path.abspath(__file__), *(argv or sys.argv[1:]),
                                      "--child", engine])
        if rc != 0:
            print(json.dumps({"engine": engine, "exit_code": rc}), flush=True)
            continue
        row = {**json.loads(out.strip().splitlines()[-1]), "peak_rss_gib": peak}
        results[engine] = row
    for row in results.values():
        base = results.get("generate")
        if base:
            row["vs_generate"] = round(row["tokens_per_s"] / base["tokens_per_s"], 2)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
