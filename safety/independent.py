"""Safety distillation on the independent sets: adversarial prompts answered safely and benign look-alikes refused,
for the untouched base model, the model the stage started from and the distilled one (the core safety suite, with
the rule safety judge chatalign.judges.safety), and the general suite (what the distillation costs elsewhere).

Beside them, the same measures on the stage's own held-out answers (eval_before.json / eval_after.json: the
adversarial and borderline sets), judged by the same independent judge; the base model is not measured there.
And how often the safety RM, the stage's own judge, agrees with the independent judge: on those held-out answers
(their scores are in the eval files) and on the independent adversarial answers (scored here).
"""

from __future__ import annotations

import json
from pathlib import Path

from chatalign.evaluation.record import Agreement, Figures
from chatalign.safety.config import SafetyConfig

SUITES = ["safety", "general"]
RESULT = "independent.json"


def _samples(path: Path, name: str) -> list[dict]:
    if not path.is_file():
        return []
    return (json.loads(path.read_text(encoding="utf-8")).get("samples") or {}).get(name) or []


def in_distribution(files: dict[str, Path], threshold: float) -> tuple[dict[str, dict[str, Figures]], list[Agreement]]:
    """({"safety": {key: Figures(before, after)}}, agreement of the RM with the judge) from the stage's own
    held-out answers."""
    from chatalign.judges.safety import judge_benign, judge_harmful

    figures: dict[str, dict] = {"adversarial_answered_safely": {}, "benign_false_refusal": {}}
    ns: dict[str, int] = {}
    agreed = n = 0
    for label in ("before", "after"):
        adversarial = _samples(files[label], "adversarial")
        if adversarial:
            safe = [judge_harmful(s["answer"]).safe for s in adversarial]
            figures["adversarial_answered_safely"][label] = sum(safe) / len(safe)
            ns["adversarial_answered_safely"] = len(safe)
            scored = [(s["safety_score"] >= threshold, ok) for s, ok in zip(adversarial, safe, strict=True)
                      if s.get("safety_score") is not None]
            agreed, n = agreed + sum(rm == ok for rm, ok in scored), n + len(scored)
        borderline = _samples(files[label], "borderline")
        if borderline:
            refused = [not judge_benign(s["answer"]).safe for s in borderline]
            figures["benign_false_refusal"][label] = sum(refused) / len(refused)
            ns["benign_false_refusal"] = len(refused)
    out = {"safety": {k: Figures(**v, n=ns[k]) for k, v in figures.items() if v}}
    what = "safety RM (score >= threshold) vs the independent safety judge, held-out adversarial answers"
    return out, ([Agreement(what=what, agree=agreed / n, n=n)] if n else [])


def rm_agreement(cfg: SafetyConfig, evaluation) -> list[Agreement]:
    """The safety RM's verdict vs the independent judge's on the independent adversarial answers of the distinct
    models evaluated (before and after; base too where it differs)."""
    from chatalign.data_schemas import load_records
    from chatalign.safety.sampling import load_safety_scorer, safety_scores
    from chatalign.text.masks import as_message_dicts

    prompts = {p.id: as_message_dicts(p.messages)
               for p in load_records(cfg.independent.data_file("safety_adversarial.jsonl"), "prompt").records}
    answers, seen = [], set()
    for per_suite in evaluation.results.values():
        result = per_suite.get("safety") or {}
        if result.get("fingerprint") in seen:
            continue
        seen.add(result.get("fingerprint"))
        answers += [s for s in result.get("samples", []) if s["set"] == "adversarial" and s["id"] in prompts]
    if not answers:
        return []
    scores = safety_scores(load_safety_scorer(cfg.safety_rm), [prompts[s["id"]] for s in answers],
                           [s["answer"] for s in answers], cfg.safety_rm.batch_tokens, sigmoid=True)
    agreed = sum((score >= cfg.eval.threshold) == s["safe"] for score, s in zip(scores, answers, strict=True))
    return [Agreement(what="safety RM (score >= threshold) vs the independent safety judge, independent "
                           "adversarial answers", agree=agreed / len(answers), n=len(answers))]


def distill_agreement(candidates_file: Path) -> list[Agreement]:
    """How often the independent judge calls safe the preprompted answers the safety RM's gate kept for training
    (the gate's verdict: safer than the answer without the preprompt). A low share means the distillation teaches
    what the judge calls unsafe: a gate no better than the RM behind it (seen with the quickstart's 135M model)."""
    from chatalign.judges.safety import judge_harmful

    if not candidates_file.is_file():
        return []
    rows = [json.loads(line) for line in candidates_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = [r for r in rows if r.get("kept")]
    if not kept:
        return []
    safe = sum(judge_harmful(r["answer_with"]).safe for r in kept)
    return [Agreement(what="safety RM distillation gate (kept: safer with the preprompt) vs the independent safety "
                           "judge (that answer is safe), the distilled answers trained on", agree=safe / len(kept),
                      n=len(kept))]


def run_safety_independent(cfg: SafetyConfig, run, train_run, files: dict[str, Path], progress: bool) -> None:
    """independent.json of a distilled model, once its training has finished (kept on --resume)."""
    if not cfg.independent.enabled or "evaluate_after" not in cfg.steps or not train_run.is_finished():
        return
    if (run.path / RESULT).is_file():
        return
    from chatalign.evaluation.stage_hook import evaluate_core, write_record

    figures, agreement = in_distribution(files, cfg.eval.threshold)
    evaluation = evaluate_core(cfg.independent, run.path, str(train_run.model_dir), cfg.model.name, SUITES,
                               progress, figures)
    gate = distill_agreement(run.path / "data" / "distill_candidates.jsonl")
    write_record(run.path, evaluation, extra_agreement=agreement + rm_agreement(cfg, evaluation) + gate)
