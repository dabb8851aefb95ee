"""Context distillation with a model: sample both answers of every adversarial prompt, score them, gate them."""

from __future__ import annotations

import logging

from chatalign.errors import DataError
from chatalign.safety.distill import DistillCandidate, apply_gate, settle_answer, with_safety_context
from chatalign.safety.taxonomy import SafetyTemplates, attack_style, category_of

log = logging.getLogger(__name__)


def load_distill_prompts(distill_cfg) -> tuple[list, dict]:
    """The adversarial Prompt records to distill on (rows with is_safety false are left out and counted)."""
    from chatalign.data_schemas import load_records

    prompts, stats = [], {"files": len(distill_cfg.prompts), "rows": 0, "not_safety_skipped": 0}
    for path in distill_cfg.prompts:
        rows = load_records(path, "prompt").records
        if distill_cfg.max_prompts:
            rows = rows[:distill_cfg.max_prompts]
        stats["rows"] += len(rows)
        for r in rows:
            if r.is_safety:
                prompts.append(r)
            else:
                stats["not_safety_skipped"] += 1
    if not prompts:
        raise DataError(f"no adversarial prompt (is_safety: true) in {', '.join(distill_cfg.prompts)}")
    return prompts, stats


def messages_of(prompt) -> list[dict]:
    return [{"role": getattr(m.role, "value", m.role), "content": m.content} for m in prompt.messages]


def preprompted(prompts: list, templates: SafetyTemplates, placement: str, use_answer_template: bool) -> list[list[dict]]:
    """Each prompt with its safety context (raises DataError for a category without a template)."""
    return [with_safety_context(messages_of(p), templates.context(p.risk_category, use_answer_template), placement)
            for p in prompts]


def build_candidates(model, tokenizer, scorer, prompts: list, templates: SafetyTemplates, distill_cfg,
                     batch_tokens: int = 8192, progress: bool = False) -> tuple[list[DistillCandidate], dict]:
    """Answers with and without the safety context, both scored on the plain prompt, the gate applied.

    The preprompted answer is settled (`unfinished`: kept, trimmed or dropped) since it may become a training
    target; the plain answer is scored as generated, even empty: it is what the model says today."""
    from chatalign.safety.sampling import safety_scores, sample_answers

    d = distill_cfg
    plain = [messages_of(p) for p in prompts]
    with_ctx = preprompted(prompts, templates, d.placement, d.use_answer_template)
    counters: dict = {}
    # One call for both halves: they share batches, and with a seed the draw is reproducible.
    answers = sample_answers(model, tokenizer, with_ctx + plain, max_new_tokens=d.max_new_tokens,
                             temperature=d.temperature, top_p=d.top_p, batch_size=d.batch_size, seed=d.seed,
                             progress=progress, counters=counters)
    n = len(prompts)
    candidates = []
    for i, p in enumerate(prompts):
        (text_w, fin_w), (text_wo, fin_wo) = answers[i], answers[n + i]
        candidates.append(DistillCandidate(
            id=p.id or f"row-{i}", risk_category=category_of(p.risk_category), attack_style=attack_style(p.tags),
            messages=plain[i], answer_with=settle_answer(text_w, fin_w, d.unfinished),
            answer_without=text_wo.strip(), finished_with=fin_w,
            finished_without=fin_wo, extra={"raw_with": text_w, "raw_without": text_wo}))
    usable = [c for c in candidates if c.answer_with is not None]
    scores = safety_scores(scorer, [c.messages for c in usable] * 2,
                           [c.answer_with for c in usable] + [c.answer_without for c in usable], batch_tokens)
    for j, c in enumerate(usable):
        c.score_with, c.score_without = round(scores[j], 4), round(scores[len(usable) + j], 4)
    apply_gate(candidates, d.margin)
    log.info("distillation: %d of %d preprompted answers kept", sum(c.kept for c in candidates), len(candidates))
    return candidates, {k: round(v, 2) if isinstance(v, float) else v for k, v in counters.items()}
