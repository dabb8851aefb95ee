"""Round evaluation: greedy (or seeded sampled) answers of this round's model, the previous one and the SFT model to the held-out
prompts, judged by the reward models; win rate = win / (win + loss) on R_c (ties count for neither). Where a
prompt carries a rule `check`, the pass rate is reported too; with sampled answers at T=1, the KL of this
round's model from the others (rlhf/evaluate/kl.py).

Answers are cached per model in the round's `eval/answers_<label>.jsonl`, so a resumed round does not
generate them again.
"""

from __future__ import annotations

import logging
from pathlib import Path

from chatalign.rlhf.rs.selection import prompt_key, read_jsonl, write_jsonl_atomic

log = logging.getLogger(__name__)


def answers_for(model_path: str, label: str, ctx, out_dir: Path) -> list[dict]:
    """Answers of `model_path` to the held-out prompts with their scores (cached in out_dir): greedy, or
    `eval.samples_per_prompt` seeded samples per prompt (rows grouped by prompt, in prompt order)."""
    from chatalign.rlhf.ppo.models import load_chat_policy
    from chatalign.rlhf.reward_fn import prompt_messages
    from chatalign.rollout.engine import generate_rollouts
    from chatalign.text.masks import encode_prompt

    ev = ctx.cfg.eval
    k = ev.samples_per_prompt
    setting = {"temperature": ev.temperature, "samples": k, "seed": ev.seed}
    path = out_dir / f"answers_{label}.jsonl"
    cached = read_jsonl(path)
    if len(cached) == len(ctx.heldout) * k and all(r.get("model") == model_path and r.get("setting") == setting
                                                     for r in cached):
        return cached
    model, tok = load_chat_policy(model_path, ctx.cfg.model)
    prompts = [p for p in ctx.heldout for _ in range(k)]
    ids = [encode_prompt(tok, prompt_messages(p)) for p in prompts]
    # one seeded generation: every model compared answers on the same random draws (paired)
    # at T=1 the answers are draws from the model, and their log-probs give the KL from the other models
    with_logprobs = ev.temperature == 1.0
    rollouts = generate_rollouts(model, tok, ids, num_samples=1, max_new_tokens=ctx.cfg.eval_max_new_tokens,
                                 temperature=ev.temperature, batch_size=ev.batch_size, seed=ev.seed,
                                 return_logprobs=with_logprobs)
    del model
    rewards = ctx.reward_fn(prompts, [r.text for r in rollouts], [r.response_ids for r in rollouts])
    rows = [{"model": model_path, "setting": setting, "prompt_key": prompt_key(p), "answer": r.text,
             "n_tokens": len(r.response_ids), "check_pass": rule_check(p, r.text), **score,
             **({"response_ids": r.response_ids, "logprob": float(sum(r.logprobs))} if with_logprobs else {})}
            for p, r, score in zip(prompts, rollouts, rewards.rows())]
    write_jsonl_atomic(path, rows)
    return rows


def rule_check(prompt, answer: str) -> float | None:
    """1.0 / 0.0 where the prompt carries a rule `check` (chatalign.judges.rules), else None: a judge that does not
    share the reward models' blind spots."""
    from chatalign.judges.rules import run_check

    spec = prompt.get("check") if isinstance(prompt, dict) else getattr(prompt, "check", None)
    return float(bool(run_check(answer, spec))) if spec else None


def per_prompt_means(rows: list[dict]) -> list[float]:
    """Mean R_c of each prompt's answers, in prompt order (rows of one prompt are consecutive)."""
    groups: dict[str, list[float]] = {}
    for r in rows:
        groups.setdefault(r["prompt_key"], []).append(r["r_combined"])
    return [sum(v) / len(v) for v in groups.values()]


def compare(a: list[dict], b: list[dict]) -> dict:
    """Win / loss / tie counts of answers `a` against `b` (same prompts, same order) on each prompt's mean R_c."""
    import torch

    from chatalign.rlhf.reward_mix import win_rate

    ra = torch.tensor(per_prompt_means(a))
    rb = torch.tensor(per_prompt_means(b))
    wins, losses = int((ra > rb).sum()), int((ra < rb).sum())
    return {"win": wins, "loss": losses, "tie": len(ra) - wins - losses, "win_rate": win_rate(wins, losses)}


def paired_gain(a: list[dict], b: list[dict]) -> dict:
    """Mean over prompts of (mean R_c of `a` - mean R_c of `b`) with its standard error sd(d)/sqrt(n) (a paired
    comparison on the same prompts and draws; the paper's win rates carry no error bar, sec. 3.4.2)."""
    from chatalign.rlhf.evaluate.kl import mean_and_se

    d = [x - y for x, y in zip(per_prompt_means(a), per_prompt_means(b))]
    m, se = mean_and_se(d)
    return {"gain": m, "se": se, "n": len(d)}


def mean(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return sum(vals) / len(vals) if vals else None


def evaluate_round(ctx, final_model: str, previous_model: str, sft_model: str | None,
                   out_dir: Path | None = None) -> dict:
    """Held-out rewards of each model and the win rates of this round's model, answers cached in `out_dir`
    (default: the round's eval/); {} without held-out prompts."""
    if not ctx.heldout:
        return {}
    out_dir = out_dir or ctx.run.path / "eval"
    ev = ctx.cfg.eval
    models = {"this": final_model}
    if ev.compare_previous:
        models["previous"] = previous_model
    if ev.compare_sft and sft_model is not None:
        models["sft"] = sft_model
    answers: dict[str, list[dict]] = {}
    by_path: dict[str, list[dict]] = {}
    for label, path in models.items():
        if path not in by_path:
            by_path[path] = answers_for(path, label, ctx, out_dir)
        answers[label] = by_path[path]
    out: dict = {}
    if "previous" in models and models.get("sft") == models["previous"]:
        out["sft_is_previous"] = True  # round 1: the model it started from is the SFT model
    for label, rows in answers.items():
        out[f"heldout_reward_{label}"] = mean(rows, "r_combined")
        out[f"heldout_helpful_{label}"] = mean(rows, "r_helpful")
        out[f"heldout_safety_{label}"] = mean(rows, "r_safety")
        out[f"heldout_length_{label}"] = mean(rows, "n_tokens")
        out[f"heldout_check_pass_{label}"] = mean(rows, "check_pass")
    for label in ("previous", "sft"):
        if label in answers:
            c = compare(answers["this"], answers[label])
            out[f"win_rate_vs_{label}"] = c["win_rate"]
            out[f"wins_vs_{label}"] = f"{c['win']}/{c['loss']}/{c['tie']}"
            g = paired_gain(answers["this"], answers[label])
            out[f"gain_vs_{label}"], out[f"gain_se_vs_{label}"] = g["gain"], g["se"]
    out.update(kl_of_this(ctx, answers["this"], {label: models[label] for label in ("previous", "sft")
                                                 if label in models and models[label] != final_model}))
    return out


def kl_of_this(ctx, this_rows: list[dict], others: dict[str, str]) -> dict:
    """kl_vs_<label>, kl_se_vs_<label>, kl_per_token_vs_<label> for each other model (one pass per model path)."""
    import time

    from chatalign.rlhf.evaluate.kl import kl_from_model

    prompts = [p for p in ctx.heldout for _ in range(ctx.cfg.eval.samples_per_prompt)]
    out: dict = {}
    by_path: dict[str, dict | None] = {}
    for label, path in others.items():
        if path not in by_path:
            t0 = time.perf_counter()
            by_path[path] = kl_from_model(this_rows, prompts, path, ctx.cfg.model, ctx.cfg.eval.batch_size)
            if by_path[path]:
                log.info("KL(this || %s) on %d held-out answers: %.3f nats per answer (%.0f s)", label,
                         len(this_rows), by_path[path]["kl"], time.perf_counter() - t0)
        for key, value in (by_path[path] or {}).items():
            out[f"{key}_vs_{label}"] = value
    return out
