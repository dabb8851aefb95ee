"""How far this round's model moved: KL(this || other) on the held-out prompts, estimated from this model's
own sampled answers (the sequence-level form of the per-token KL that PPO penalises, RECIPE.md "PPO").

Only sampled answers at temperature 1 (the round evaluation's `eval.temperature: 1.0`) are draws from the
model's distribution, so only they give an unbiased estimate; greedy or tempered evaluations report none.
"""

from __future__ import annotations

import math


def mean_and_se(values: list[float]) -> tuple[float, float]:
    """Sample mean and its standard error sd/sqrt(n) (sample sd, n - 1); nan where undefined."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    m = sum(values) / n
    if n == 1:
        return m, float("nan")
    return m, math.sqrt(sum((x - m) ** 2 for x in values) / (n - 1) / n)


def sequence_kl(logp_this: list[float], logp_other: list[float], n_tokens: list[int]) -> dict:
    """KL(this || other) in nats per answer, ± SE, and per answer token: the mean over answers y ~ this of
    log pi_this(y|x) - log pi_other(y|x) (the k1 estimator of InstructGPT / Llama 2 sec. 3.2.3)."""
    d = [a - b for a, b in zip(logp_this, logp_other, strict=True)]
    m, se = mean_and_se(d)
    tokens = sum(n_tokens)
    return {"kl": m, "kl_se": se, "kl_per_token": sum(d) / tokens if tokens else float("nan")}


def kl_from_model(this_rows: list[dict], prompts: list, model_path: str, model_cfg,
                  batch_size: int = 16) -> dict | None:
    """KL(this || the model at `model_path`) from this model's answer rows (which carry `response_ids` and
    `logprob`, their summed log-probability under this model at T=1); None where the rows lack them."""
    if not this_rows or any(r.get("logprob") is None or "response_ids" not in r for r in this_rows):
        return None
    from chatalign.rlhf.ppo.models import load_chat_policy
    from chatalign.rlhf.reward_fn import prompt_messages
    from chatalign.rollout.logprobs import sequence_logprobs
    from chatalign.text.masks import encode_prompt

    model, tok = load_chat_policy(model_path, model_cfg)
    prompt_ids = [encode_prompt(tok, prompt_messages(p)) for p in prompts]
    seqs = [ids + list(r["response_ids"]) for ids, r in zip(prompt_ids, this_rows, strict=True)]
    other = sequence_logprobs(model, seqs, [len(ids) for ids in prompt_ids], batch_size)
    del model
    return sequence_kl([r["logprob"] for r in this_rows], [float(lp.sum()) for lp in other],
                       [len(r["response_ids"]) for r in this_rows])
