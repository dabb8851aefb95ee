"""Example dialogues for the pipeline report: base, first and final chat model side by side on held-out prompts.

Each stage says what a finished step of it offers (`Stage.example_source`: its held-out prompt file, the answers
its evaluation files already hold). The prompts are the first chat-model stage's (plus one of a later step's
extra kind, e.g. an adversarial prompt); answers not in any file are generated here, greedily, with the same
token budget as the stage's evaluation (at most MAX_NEW_TOKENS), so the columns are comparable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from chatalign import registry
from chatalign.pipeline.report_sections import Ctx, StepInfo, not_run, rel

log = logging.getLogger(__name__)

MAX_NEW_TOKENS = 48


@dataclass
class ExampleSource:
    """What a finished step offers the example dialogues (read from its manifest and evaluation files)."""

    answers: dict[str, str] = field(default_factory=dict)  # its model's answers, by prompt id
    prompts: str | None = None  # held-out prompt file of its evaluation
    extra_prompts: str | None = None  # prompts of another kind, one of which joins the examples
    extra_kind: str = ""  # what one of those is, for the text: "an adversarial one"
    max_new_tokens: int | None = None  # its evaluation's answer budget
    base_model: str | None = None  # the model it started from
    base_answers: dict[str, str] = field(default_factory=dict)  # that model's answers, by prompt id
    model_settings: dict = field(default_factory=dict)  # its config's model section (dtype, chat template)


def answers_in(step: StepInfo, name: str) -> dict[str, str]:
    """{prompt id: answer} from an evaluation file's samples (a list, or lists per evaluation set)."""
    data = step.json(name)
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


def _source(step: StepInfo) -> ExampleSource:
    stage = registry.find(step.stage)
    return (stage.example_source(step) if stage else None) or ExampleSource()


def _budget(source: ExampleSource) -> int:
    return min(MAX_NEW_TOKENS, source.max_new_tokens or MAX_NEW_TOKENS)


def _chat_steps(ctx: Ctx) -> list[StepInfo]:
    """Enabled finished steps whose run directory holds a chat model, in pipeline order."""
    return [s for s in ctx.steps if s.enabled and s.finished and makes_chat_model(s.stage)]


def makes_chat_model(stage_name: str) -> bool:
    stage = registry.find(stage_name)
    return stage is not None and stage.makes_chat_model


def examples_section(ctx: Ctx, n: int) -> list:
    chat_stages = [st for st in registry.stages() if st.makes_chat_model and ctx.of(st.name)]
    origin = chat_stages[0] if chat_stages else None
    title = (origin.title or origin.name) if origin else "first"
    blocks: list = [("h", 2, f"Example dialogues: base, {title} and final model")]
    first = next(iter(ctx.done(origin.name)), None) if origin else None
    finished = _chat_steps(ctx)
    if first is None or not finished:
        return blocks + (not_run(ctx, origin.name, "example dialogues") if origin else
                         [("p", "Stage not run (no chat-model step in this pipeline): no example dialogues.")])
    sources = {s.name: _source(s) for s in finished}
    final, src = finished[-1], sources[first.name]
    extra = next(((s, sources[s.name]) for s in reversed(finished) if sources[s.name].extra_prompts), None)
    n_extra = 1 if extra is not None and n > 1 else 0
    prompts = [(p, _budget(src)) for p in _prompts(src.prompts, n - n_extra)]
    if n_extra:
        prompts += [(p, _budget(extra[1])) for p in _prompts(extra[1].extra_prompts, n_extra)]
    if not prompts:
        return blocks + [("p", f"No held-out prompts (step `{first.name}` evaluated on none): no examples.")]
    base = src.base_model or "embedded"
    models = {"base": (base, src.base_answers), title: (str(first.dir), src.answers)}
    if final is not first:
        models[f"final ({final.name})"] = (str(final.dir), sources[final.name].answers)
    answers, generated = _answers(models, prompts, src.model_settings)
    rows = [{"prompt": _prompt_text(p), **{label: shown(answers[label].get(str(p.id))) for label in models}}
            for p, _ in prompts]
    also = f", plus {extra[1].extra_kind} from step `{extra[0].name}`" if n_extra else ""
    blocks += [("p", f"Greedy answers to held-out prompts (the {title} evaluation's{also}). Base model `{base}`, "
                     f"{title} `{rel(first.dir, ctx.root)}`, "
                     + (f"final `{rel(final.dir, ctx.root)}`" if final is not first else "no later model step finished")
                     + f". {generated} answers generated for this report, the others read from the stages' "
                     "evaluation files."),
               ("table", ["prompt", *models], rows)]
    return blocks


def _answers(models: dict[str, tuple[str, dict]], prompts: list, settings: dict) -> tuple[dict, int]:
    """Each model's answers to the prompts: the known ones, the others generated (how many: the second value)."""
    answers: dict[str, dict[str, str]] = {}
    generated = 0
    for label, (name, known) in models.items():
        answers[label] = {str(p.id): known[str(p.id)] for p, _ in prompts if str(p.id) in known}
        jobs = [(str(p.id), [{"role": getattr(m.role, "value", m.role), "content": m.content} for m in p.messages],
                 budget) for p, budget in prompts if str(p.id) not in answers[label]]
        if jobs:
            try:
                answers[label].update(_generate(name, settings, jobs))
                generated += len(jobs)
            except Exception as exc:  # a report must not fail a finished pipeline: say why, go on
                log.warning("examples: could not generate with %s: %s", name, exc)
                answers[label].update({pid: f"(not generated: {exc})" for pid, _, _ in jobs})
    return answers, generated


def _prompt_text(p) -> str:
    earlier = len([m for m in p.messages if getattr(m.role, "value", m.role) == "user"]) - 1
    return p.messages[-1].content + (f" (after {earlier} earlier turn{'s' if earlier > 1 else ''})"
                                     if earlier > 0 else "")
