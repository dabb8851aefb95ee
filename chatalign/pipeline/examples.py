"""Example dialogues for the pipeline report: base, SFT and final model side by side on held-out prompts.

Answers come from the evaluation files the stages already wrote where those hold the prompt (SFT's
eval_base.json / eval_final.json, safety's eval_after.json); the others are generated here, greedily, with the
same token budget as the stage's evaluation (at most MAX_NEW_TOKENS), so the columns are comparable.
"""

from __future__ import annotations

import logging
from pathlib import Path

from chatalign.pipeline.report_sections import Ctx, StepInfo, not_run, rel

log = logging.getLogger(__name__)

MAX_NEW_TOKENS = 48


def _samples(step: StepInfo | None, name: str) -> dict[str, str]:
    """{prompt id: answer} from an evaluation file's samples (a list, or lists per evaluation set)."""
    data = step.json(name) if step else None
    samples = (data or {}).get("samples") or []
    if isinstance(samples, dict):
        samples = [r for rows in samples.values() for r in rows]
    return {str(r["id"]): r["answer"] for r in samples if r.get("id") is not None and "answer" in r}


def _prompts(path: str | None, limit: int) -> list:
    """Up to `limit` held-out prompts, one per task tag first (single-turn before multi-turn)."""
    if not path or not Path(path).exists() or limit <= 0:
        return []
    from chatalign.data_schemas import load_records

    rows = [r for r in load_records(path, "prompt").records if r.id is not None]
    rows.sort(key=lambda r: len(r.messages) > 1)
    picked, tags = [], set()
    for r in rows:
        tag = (r.tags or ["-"])[0]
        if tag not in tags:
            picked.append(r)
            tags.add(tag)
    picked += [r for r in rows if r not in picked]
    return picked[:limit]


def _generate(model_name: str, cfg_model: dict, jobs: list[tuple[str, list[dict], int]]) -> dict[str, str]:
    """Greedy answers of one model to (prompt id, messages, max_new_tokens) jobs."""
    from chatalign.models import load_causal_lm, load_tokenizer
    from chatalign.rollout.engine import generate_rollouts
    from chatalign.text.masks import encode_prompt
    from chatalign.text.templates import apply_named_template

    trust = bool(cfg_model.get("trust_remote_code"))
    tok = load_tokenizer(model_name, trust)
    apply_named_template(tok, cfg_model.get("chat_template"))
    model = load_causal_lm(model_name, cfg_model.get("dtype") or "auto", trust)
    model.eval()
    out = {}
    for budget in sorted({b for _, _, b in jobs}):
        batch = [(pid, msgs) for pid, msgs, b in jobs if b == budget]
        ids = [encode_prompt(tok, msgs) for _, msgs in batch]
        for r in generate_rollouts(model, tok, ids, max_new_tokens=budget, temperature=0.0, batch_size=len(ids),
                                   return_logprobs=False):
            out[batch[r.prompt_index][0]] = r.text
    del model
    return out


def shown(answer: str | None) -> str:
    if answer is None:
        return "-"
    return answer.strip() or f"(blank: {answer!r})"


def examples_section(ctx: Ctx, n: int) -> list:
    blocks: list = [("h", 2, "Example dialogues: base, SFT and final model")]
    sft = next(iter(ctx.done("sft")), None)
    finished = [s for s in ctx.steps if s.enabled and s.finished and s.stage != "reward"]
    if sft is None or not finished:
        return blocks + not_run(ctx, "sft", "example dialogues")
    final = finished[-1]
    safety = next(iter(reversed(ctx.done("safety"))), None)
    sft_cfg = sft.config
    sft_budget = min(MAX_NEW_TOKENS, (sft_cfg.get("eval") or {}).get("max_new_tokens") or MAX_NEW_TOKENS)
    n_adv = 1 if safety is not None and n > 1 else 0
    prompts = [(p, sft_budget) for p in _prompts((sft_cfg.get("data") or {}).get("eval"), n - n_adv)]
    if n_adv:
        ev = safety.config.get("eval") or {}
        budget = min(MAX_NEW_TOKENS, ev.get("max_new_tokens") or MAX_NEW_TOKENS)
        prompts += [(p, budget) for p in _prompts(ev.get("adversarial"), n_adv)]
    if not prompts:
        return blocks + [("p", "No held-out prompts (the SFT step has no `data.eval`): no examples.")]
    base_name = (sft_cfg.get("model") or {}).get("name") or "embedded"
    models = {"base": (base_name, _samples(sft, "eval_base.json")),
              "SFT": (str(sft.dir), _samples(sft, "eval_final.json"))}
    if final is not sft:
        models[f"final ({final.name})"] = (str(final.dir), _samples(final, "eval_after.json") if final is safety else {})
    answers: dict[str, dict[str, str]] = {}
    generated = 0
    for label, (name, known) in models.items():
        answers[label] = {str(p.id): known[str(p.id)] for p, _ in prompts if str(p.id) in known}
        jobs = [(str(p.id), [{"role": getattr(m.role, "value", m.role), "content": m.content} for m in p.messages],
                 budget) for p, budget in prompts if str(p.id) not in answers[label]]
        if jobs:
            try:
                answers[label].update(_generate(name, sft_cfg.get("model") or {}, jobs))
                generated += len(jobs)
            except Exception as exc:  # a report must not fail a finished pipeline: say why, go on
                log.warning("examples: could not generate with %s: %s", name, exc)
                answers[label].update({pid: f"(not generated: {exc})" for pid, _, _ in jobs})
    rows = []
    for p, _ in prompts:
        earlier = len([m for m in p.messages if getattr(m.role, "value", m.role) == "user"]) - 1
        text = p.messages[-1].content + (f" (after {earlier} earlier turn{'s' if earlier > 1 else ''})"
                                         if earlier > 0 else "")
        rows.append({"prompt": text, **{label: shown(answers[label].get(str(p.id))) for label in models}})
    blocks += [("p", f"Greedy answers to held-out prompts (the SFT evaluation's, plus an adversarial one where the "
                     f"safety step ran). Base model `{base_name}`, SFT `{rel(sft.dir, ctx.root)}`, "
                     + (f"final `{rel(final.dir, ctx.root)}`" if final is not sft else "no later model step finished")
                     + f". {generated} answers generated for this report, the others read from the stages' "
                     "evaluation files."),
               ("table", ["prompt", *models], rows)]
    return blocks
