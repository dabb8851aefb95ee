"""Held-out implicit-reward accuracy of a DPO run's saved model, in the reward model's tables.

A pair counts as correct when the implicit reward of its chosen answer, beta * (log pi(y_w|x) - log
pi_ref(y_w|x)), is strictly higher than the rejected one's (Rafailov et al. sec. 5.1, the "reward accuracy"
of TRL's logs). The policy is `model/` loaded back from disk, so what is measured is what later stages get;
the reference log-probs are the ones stored before training. The tables are the RM's (chatalign.reward.evaluate:
overall, per strength as Llama 2 Table 8, per source and safety bin), with implicit rewards as the scores.
"""

from __future__ import annotations

from pathlib import Path


def reward_rows(sets: dict, logps: dict, beta: float) -> list[dict]:
    """One row per held-out pair for chatalign.reward.evaluate.accuracy_report: implicit rewards as scores."""
    from chatalign.dpo.loss import implicit_rewards

    rows = []
    for name, pairs in sets.items():
        for pair, (chosen, rejected) in zip(pairs, logps[name].tolist(), strict=True):
            rows.append({"file": name, "source": pair.source, "strength": pair.strength,
                         "safety_bin": pair.safety_bin,
                         "chosen": implicit_rewards(chosen, pair.ref_chosen, beta),
                         "rejected": implicit_rewards(rejected, pair.ref_rejected, beta),
                         "chosen_logp": chosen, "rejected_logp": rejected})
    return rows


def evaluate_model(model_dir: Path, cfg, sets: dict, excluded: dict) -> dict | None:
    """Accuracy tables of the saved policy on the held-out pairs (their reference log-probs filled in)."""
    if not any(sets.values()):
        return None
    import torch

    from chatalign.dpo.reference import score_pairs
    from chatalign.models import load_causal_lm
    from chatalign.reward.evaluate import accuracy_report

    model = load_causal_lm(model_dir, cfg.model.dtype, cfg.model.trust_remote_code, cfg.model.attn_implementation)
    model.config.use_cache = False
    if torch.cuda.is_available():
        model.to("cuda")
    logps = {name: score_pairs(model, pairs, cfg.eval.batch_tokens) for name, pairs in sets.items() if pairs}
    rows = reward_rows({k: v for k, v in sets.items() if v}, logps, cfg.dpo.beta)
    report = accuracy_report(rows)
    report["excluded_chosen_unsafe_rejected_safe"] = dict(excluded)
    report["scores"] = {"chosen": [r["chosen"] for r in rows], "rejected": [r["rejected"] for r in rows]}
    n = len(rows)
    report["logps"] = {"chosen_policy": sum(r["chosen_logp"] for r in rows) / n,
                       "rejected_policy": sum(r["rejected_logp"] for r in rows) / n,
                       "chosen_reference": sum(p.ref_chosen for v in sets.values() for p in v) / n,
                       "rejected_reference": sum(p.ref_rejected for v in sets.values() for p in v) / n}
    report["model"] = str(model_dir)
    report["data"] = [s.path for s in cfg.data.eval]
    return report


def eval_summary(report: dict) -> dict:
    out = {"eval_accuracy": report["overall"]["accuracy"], "eval_pairs": report["overall"]["pairs"],
           "eval_reward_margin": report["overall"]["mean_gap"]}
    for label, row in report["per_strength"].items():
        out[f"eval_accuracy_{label}"] = row["accuracy"]
    return out
