"""Per-phase time breakdown of PPO iterations on the embedded model (SmolLM2-135M), printed as JSON lines.

Phases of one iteration: generation (rollout engine, log pi_old comes with it), scoring (both reward
models), reference (log pi_ref: the adapter-disabled policy with LoRA, a frozen copy otherwise), values (old
values), training (minibatch updates of policy and value model). One line per iteration, then a summary line
with the mean share of each phase over the timed iterations (the first iteration is timed too, but reported
apart: it pays one-off allocation costs). Each phase is reported in wall seconds and in process-CPU
seconds: on a shared machine the CPU seconds (with --threads 1) are the figure that does not depend on what
else runs; two intra-op threads on an oversubscribed 2-core machine spin against other jobs and can run
several times slower than one.

The reward models are the quickstart RMs when they exist (runs/quickstart/reward_helpful, reward_safety), else
the embedded model with fresh scalar heads: the scores are then meaningless but every cost is the real one.

    .venv/bin/python bench/ppo_iteration.py                        # 16 prompts, 32 new tokens, LoRA policy
    .venv/bin/python bench/ppo_iteration.py --full-policy          # full-weight policy + frozen reference copy
    .venv/bin/python bench/ppo_iteration.py --prompts 8 --max-new-tokens 16 --iterations 2 --threads 1
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

PHASES = ("generation", "scoring", "reference", "values", "training")


def reward_models(args, tok_dir: str):
    """The quickstart RMs if present, else two embedded-model RMs with fresh heads (saved to a temp dir)."""
    from chatalign.rlhf.reward_fn import load_two_reward_models

    helpful, safety = Path(args.helpful), Path(args.safety)
    if helpful.exists() and safety.exists():
        return str(helpful), str(safety), "quickstart RMs"
    from chatalign.models import load_tokenizer
    from chatalign.reward.model import load_reward_model, save_reward_model

    tmp = Path(tempfile.mkdtemp(prefix="bench-rm-"))
    tok = load_tokenizer(tok_dir)
    end = tok.convert_tokens_to_ids("<|im_end|>")
    for name, seed in (("helpful", 1), ("safety", 2)):
        save_reward_model(load_reward_model("embedded", "float32", seed=seed), tok, tmp / name, {end})
    _ = load_two_reward_models  # imported here so that a broken import fails before the slow part
    return str(tmp / "helpful"), str(tmp / "safety"), "embedded model with fresh heads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=16, help="prompts per iteration (batch_prompts)")
    parser.add_argument("--minibatch", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--full-policy", action="store_true", help="no LoRA: train all weights, frozen ref copy")
    parser.add_argument("--value-layers", type=int, default=4, help="value model: train the top N layers")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--helpful", default="runs/quickstart/reward_helpful")
    parser.add_argument("--safety", default="runs/quickstart/reward_safety")
    parser.add_argument("--policy", default="embedded", help="policy model (run dir, HF dir or embedded)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from chatalign.data_schemas import load_records
    from chatalign.models import resolve_model_path
    from chatalign.rlhf.config import PPOSection
    from chatalign.rlhf.ppo.models import load_models
    from chatalign.rlhf.ppo.trainer import PPOTrainer
    from chatalign.rlhf.reward_fn import load_two_reward_models
    from chatalign.runs import RunDir
    from chatalign.training.config import LoraConfig

    root = Path(__file__).resolve().parents[1]
    prompts = load_records(root / "data/quickstart/prompts_train.jsonl", "prompt").records
    policy_dir = resolve_model_path(args.policy)
    t = time.perf_counter()
    helpful, safety, rm_kind = reward_models(args, policy_dir)
    judge = load_two_reward_models(helpful, safety, dtype="float32")
    lora = LoraConfig(enabled=not args.full_policy, r=16, alpha=32, dropout=0.0)
    models = load_models(policy_dir, helpful, dtype="float32", lora=lora, seed=0,
                         value_trainable_layers=args.value_layers)
    load_s = time.perf_counter() - t
    cfg = PPOSection.model_validate({
        "iterations": args.iterations, "batch_prompts": args.prompts, "minibatch": args.minibatch,
        "max_new_tokens": args.max_new_tokens, "gen_batch_size": args.prompts, "score_batch_size": args.minibatch,
        "optim": {"lr": 1e-5}, "checkpoint_every": 10**6})
    work = Path(tempfile.mkdtemp(prefix="bench-ppo-"))
    run = RunDir(work, "rlhf")
    trainer = PPOTrainer(models, prompts, judge, cfg, run, work / "ppo")
    trainable = sum(p.numel() for p in models.policy.parameters() if p.requires_grad)
    print(json.dumps({"setting": "ppo_iteration", "policy": "lora r16" if lora.enabled else "full",
                      "policy_trainable_params": trainable, "reward_models": rm_kind,
                      "value_trainable_layers": args.value_layers, "prompts": args.prompts,
                      "minibatch": args.minibatch, "max_new_tokens": args.max_new_tokens,
                      "threads": torch.get_num_threads(), "load_seconds": round(load_s, 1)}), flush=True)
    records = []
    for it in range(args.iterations):
        rec = trainer.iteration(it)
        records.append(rec)
        tokens = rec["response_length"] * args.prompts
        print(json.dumps({"iteration": it + 1, **{f"{p}_s": rec[f"time_{p}_s"] for p in PHASES},
                          **{f"{p}_cpu_s": rec[f"cpu_{p}_s"] for p in PHASES},
                          "total_s": rec["time_iteration_s"], "answer_tokens": tokens,
                          "generation_tokens_per_s": round(tokens / rec["time_generation_s"], 1),
                          "generation_tokens_per_cpu_s": round(tokens / rec["cpu_generation_s"], 1),
                          "reward": round(rec["reward"], 4), "kl": round(rec["kl"], 4)}), flush=True)
    timed = records[1:] or records
    for kind, key in (("wall", "time"), ("cpu", "cpu")):
        mean = {p: sum(r[f"{key}_{p}_s"] for r in timed) / len(timed) for p in PHASES}
        total = sum(mean.values())
        print(json.dumps({"summary": f"{kind} seconds, mean of iterations {2 if len(records) > 1 else 1}.."
                          f"{len(records)}", **{f"{p}_s": round(v, 2) for p, v in mean.items()},
                          **{f"{p}_share": round(v / total, 3) for p, v in mean.items()},
                          "iteration_s": round(total, 2)}), flush=True)


if __name__ == "__main__":
    main()
