"""The model side of the safety stage: answers from the policy (rollout engine) and safety RM scores."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


def sample_answers(model, tokenizer, prompts: list[list[dict]], *, max_new_tokens: int, temperature: float,
                   top_p: float = 1.0, batch_size: int = 16, seed: int = 0, progress: bool = False,
                   counters: dict | None = None) -> list[tuple[str, bool]]:
    """One answer per prompt (messages up to a user turn): (text, finished), in prompt order. `model`: a loaded
    model or a generator (chatalign.rollout.generator)."""
    from chatalign.rollout.generator import as_generator
    from chatalign.text.masks import encode_prompt

    if not prompts:
        return []
    ids = [encode_prompt(tokenizer, p) for p in prompts]
    t0 = time.perf_counter()
    outs = as_generator(model).rollouts(tokenizer, ids, num_samples=1, max_new_tokens=max_new_tokens,
                                        temperature=temperature, top_p=top_p, batch_size=batch_size, seed=seed,
                                        return_logprobs=False, progress=progress)
    if counters is not None:
        counters["generate_seconds"] = counters.get("generate_seconds", 0.0) + time.perf_counter() - t0
        counters["prompt_tokens"] = counters.get("prompt_tokens", 0) + sum(len(i) for i in ids)
        counters["new_tokens"] = counters.get("new_tokens", 0) + sum(len(o.response_ids) for o in outs)
        counters["unfinished"] = counters.get("unfinished", 0) + sum(not o.finished for o in outs)
    answers: list[tuple[str, bool]] = [("", False)] * len(prompts)
    for o in outs:
        answers[o.prompt_index] = (o.text, o.finished)
    return answers


def safety_scores(scorer, prompts: list[list[dict]], answers: list[str], batch_tokens: int = 8192,
                  sigmoid: bool = False) -> list[float]:
    """The safety RM's score of each (prompt, answer): raw (the RM's logit) or sigmoid-scaled to (0, 1)."""
    if not prompts:
        return []
    t0 = time.perf_counter()
    out = scorer.score(prompts, answers, sigmoid=sigmoid, batch_tokens=batch_tokens)
    log.info("scored %d answers with the safety RM in %.1f s", len(answers), time.perf_counter() - t0)
    return [float(x) for x in out]


def load_policy(name: str, model_cfg, device: str | None = None):
    """The policy and its tokenizer (the recipe's chat template applied), on the GPU when there is one."""
    import torch

    from chatalign.models import load_causal_lm, load_tokenizer
    from chatalign.text.templates import apply_named_template

    tok = load_tokenizer(name, model_cfg.trust_remote_code)
    apply_named_template(tok, model_cfg.chat_template)
    model = load_causal_lm(name, model_cfg.dtype, model_cfg.trust_remote_code, model_cfg.attn_implementation)
    target = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(target).eval(), tok


def open_policy_generator(name: str, cfg):
    """(generator, tokenizer) of the policy `name` with the stage's `generation:` backend; close it when done."""
    from chatalign.rollout.generator import open_generator

    return open_generator(cfg.generation, cfg.model, name, lambda path: load_policy(path, cfg.model))


def load_safety_scorer(rm_cfg, device: str | None = None):
    from chatalign.reward import load_scorer

    return load_scorer(rm_cfg.name, device=device, dtype=rm_cfg.dtype, max_seq_len=rm_cfg.max_seq_len)
