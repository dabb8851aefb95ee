"""`chatalign prefs`: a batch of fresh comparisons from the latest model(s), labelled.

Run directory (`output_dir`):
  manifest.json        stage prefs, config, input hashes, parents (the models that answered)
  comparisons.jsonl    every sampled pair: prompt, answer A and B with the model and settings that drew them
  preferences.jsonl    the labelled pairs (canonical preferences; each `annotation` names who labelled it),
                       written by the rules or the judge here, by `chatalign annotate` for people
  labels.json          counts: pairs, labelled, and why the others have no label
  report.md
Sampling writes comparisons.jsonl at once when done, so `--resume` after a kill starts again at labelling.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter
from pathlib import Path

from chatalign.errors import ConfigError, RunError
from chatalign.prefs.config import PrefsConfig

log = logging.getLogger(__name__)


def load_prompts(cfg: PrefsConfig) -> list:
    from chatalign.data_schemas import load_records

    prompts = []
    for path in cfg.data.prompts:
        rows = load_records(path, "prompt").records
        prompts += rows[:cfg.data.max_prompts] if cfg.data.max_prompts else rows
    if not prompts:
        raise ConfigError("data.prompts: no prompts in the files")
    return prompts


def answer_models(cfg: PrefsConfig) -> list[str]:
    return [str(a.model or cfg.model.name) for a in cfg.answers]


def prepare(cfg: PrefsConfig) -> dict:
    """What --dry-run checks: the prompts, the models' existence (not their weights), the judge's settings."""
    from chatalign.models import resolve_model_path

    prompts = load_prompts(cfg)
    for key, name in (("answers.0.model", answer_models(cfg)[0]), ("answers.1.model", answer_models(cfg)[1])):
        resolve_model_path(name, key=key)
    return {"prompts": len(prompts), "with_rule": sum(p.check is not None for p in prompts),
            "models": answer_models(cfg), "annotator": cfg.annotator.kind}


def sample_comparisons(cfg: PrefsConfig, prompts: list, progress: bool) -> list:
    """Answer A and answer B for every prompt (each slot with its model and settings, seed + slot); pairs whose
    answers are the same text (or empty) are dropped, the rest become Comparison records."""
    from chatalign.data_schemas import Comparison
    from chatalign.rollout.generator import ModelGenerators
    from chatalign.text.masks import encode_prompt

    m, gen, texts = cfg.model, cfg.generation, []
    # native: each model loaded in turn; vLLM: one engine, its weights swapped when answer B's model differs
    generators = ModelGenerators(gen, m, lambda name: load_answer_model(name, m))
    for slot, (settings, name) in enumerate(zip(cfg.answers, answer_models(cfg), strict=True)):
        generator, tok = generators.open(name)
        ids = [encode_prompt(tok, [x.model_dump() for x in p.messages]) for p in prompts]
        outs = generator.rollouts(tok, ids, max_new_tokens=gen.max_new_tokens, temperature=settings.temperature,
                                  top_p=settings.top_p, batch_size=gen.batch_size, seed=gen.seed + slot,
                                  return_logprobs=False, progress=progress)
        texts.append([o.text.strip() for o in sorted(outs, key=lambda o: o.prompt_index)])
        del generator
    generators.close()
    comps = []
    for k, p in enumerate(prompts):
        a, b = texts[0][k], texts[1][k]
        if not a or not b or a == b:
            continue
        answers = [{"text": t, "model": name, "settings": {**s.model_dump(exclude={"model"}),
                                                            "max_new_tokens": gen.max_new_tokens, "seed": gen.seed + i}}
                   for i, (t, name, s) in enumerate(zip((a, b), answer_models(cfg), cfg.answers, strict=True))]
        comps.append(Comparison(id=p.id or f"prompt-{k}", prompt=p.messages, answers=answers,
                                category="safety" if p.is_safety else "helpfulness", check=p.check,
                                source=p.risk_category))
    return comps


def load_answer_model(name: str, m) -> tuple:
    """(causal LM in eval mode, its tokenizer with the recipe's chat template) for the native engine."""
    from chatalign.models import load_causal_lm, load_tokenizer
    from chatalign.text.templates import apply_named_template

    tok = load_tokenizer(name, m.trust_remote_code)
    apply_named_template(tok, m.chat_template)
    return load_causal_lm(name, m.dtype, m.trust_remote_code, m.attn_implementation).eval(), tok


def label_comparisons(cfg: PrefsConfig, comps: list) -> tuple[list, Counter]:
    """Rules or the judge label each comparison; the Counter says why the others have none."""
    from chatalign.annotate.labels import to_preference
    from chatalign.prefs.annotators import Verdict, judge_verdicts, rule_verdict

    if cfg.annotator.kind == "rules":
        verdicts, who = [rule_verdict(c) for c in comps], "rules"
    else:
        from chatalign.judges.llm import load_llm_judge

        verdicts, who = judge_verdicts(load_llm_judge(cfg.annotator.judge), comps), f"judge:{cfg.annotator.judge.name}"
    prefs, why = [], Counter()
    for comp, v in zip(comps, verdicts, strict=True):
        if isinstance(v, Verdict):
            prefs.append(to_preference(comp, v.better, v.strength, v.safety, who, None))
        else:
            why[v] += 1
    return prefs, why


def run_prefs(cfg: PrefsConfig, resume: bool = False, progress: bool = True) -> dict:
    from chatalign.data_schemas import load_records, write_jsonl
    from chatalign.runs import RunDir, write_json_atomic, write_text_atomic

    run = RunDir(cfg.output_dir, "prefs")
    if run.is_finished() and not resume:
        raise RunError(f"{run.path} already holds a finished prefs batch; choose another output_dir")
    if run.manifest_path.is_file() and not resume:
        raise RunError(f"{run.path} holds an unfinished prefs batch: add --resume to continue it, or choose another "
                       "output_dir")
    prompts = load_prompts(cfg)
    run.lock()
    try:
        if run.is_finished():
            return (run.read_manifest() or {}).get("metrics", {})
        run.start(cfg.model_dump(mode="json"), {f"prompts_{i}": p for i, p in enumerate(cfg.data.prompts)},
                  parents=list(dict.fromkeys(str(Path(n).resolve()) for n in answer_models(cfg) if Path(n).exists())),
                  resume=resume)
        comp_file = run.path / "comparisons.jsonl"
        if comp_file.is_file():  # sampled before a kill: label these
            comps = list(load_records(comp_file, "comparison").records)
        else:
            comps = sample_comparisons(cfg, prompts, progress)
            write_jsonl(comp_file, comps)
        metrics = {"prompts": len(prompts), "comparisons": len(comps), "annotator": cfg.annotator.kind,
                   "identical_answers_dropped": len(prompts) - len(comps)}
        if cfg.annotator.kind != "people":
            metrics.update(write_labels(cfg, run.path, comps))
        write_json_atomic(run.path / "labels.json", metrics)
        write_text_atomic(run.path / "report.md", report(cfg, metrics))
        run.log_metrics({"step": 0, **{k: v for k, v in metrics.items() if isinstance(v, (int, float))}})
        run.finish(metrics)
        return metrics
    finally:
        run.unlock()


def write_labels(cfg: PrefsConfig, out: Path, comps: list) -> dict:
    """Label, split off the held-out pairs, score them with the current RMs; the metrics of it."""
    from chatalign.data_schemas import write_jsonl
    from chatalign.prefs.batch import rm_accuracy_before, split_heldout

    prefs, why = label_comparisons(cfg, comps)
    if len(prefs) < (2 if cfg.heldout_fraction > 0 else 1):
        counts = ", ".join(f"{k} {v}" for k, v in sorted(why.items())) or "no comparisons"
        raise RunError(f"the {cfg.annotator.kind} annotator labelled {len(prefs)} of {len(comps)} comparisons "
                       f"({counts}): too few for a batch to train and evaluate on (comparisons.jsonl is kept); "
                       "more prompts (data.max_prompts), prompts with rules the model can keep, or other sampling")
    train, heldout = split_heldout(prefs, cfg.heldout_fraction, cfg.generation.seed)
    write_jsonl(out / "preferences.jsonl", train)
    write_jsonl(out / "preferences_heldout.jsonl", heldout)
    by_id = {c.id: c for c in comps}
    metrics = {"labelled": len(prefs), "train_pairs": len(train), "heldout_pairs": len(heldout),
               "unlabelled": dict(sorted(why.items())),
               "answer_a_chosen": sum(p.chosen == by_id[p.annotation.comparison_id].answers[0].text for p in prefs),
               "strengths": dict(Counter(p.strength.value for p in prefs))}
    if cfg.reward_models.helpful or cfg.reward_models.safety:
        metrics["rm_accuracy_before"] = rm_accuracy_before(cfg.reward_models, heldout or prefs)
        metrics["rm_accuracy_on"] = "heldout" if heldout else "all labelled pairs"
    return metrics


def report(cfg: PrefsConfig, metrics: dict) -> str:
    when = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    lines = [f"# Preference batch ({cfg.annotator.kind})", "", f"Written {when}.", "",
             "| answer | model | temperature | top_p |", "|---|---|---|---|"]
    for slot, (s, name) in enumerate(zip(cfg.answers, answer_models(cfg), strict=True)):
        lines.append(f"| {'AB'[slot]} | {name} | {s.temperature} | {s.top_p} |")
    before = metrics.get("rm_accuracy_before") or {}
    if before:
        lines += ["", f"Current reward models on this batch ({metrics['rm_accuracy_on']}), before any retraining:",
                  "", "| RM | model | pairs | accuracy |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['model']} | {v['pairs']} | {v['accuracy']:.1%} |" for k, v in before.items()]
    lines += ["", "```json", json.dumps(metrics, indent=2), "```", ""]
    if cfg.annotator.kind == "people":
        lines.append(f"Label them: `chatalign annotate {Path(cfg.output_dir) / 'comparisons.jsonl'} --labels "
                     f"{Path(cfg.output_dir) / 'preferences.jsonl'}`")
    return "\n".join(lines) + "\n"
