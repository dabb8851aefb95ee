"""`chatalign safety`: context distillation with the safety RM as gate, fine-tuning, evaluation before/after.

Run directory (`output_dir`):
  manifest.json                  stage safety, config, input hashes, parents (starting model, safety RM), lineage
  data/distill_candidates.jsonl  every adversarial prompt: both answers, both safety scores, gain, kept or why not
  data/distill_train.jsonl       the training Conversations (prompt without the preprompt, kept answer)
  data/distill.json              kept counts and score gains per risk category and attack style (marks the step done)
  eval_before.json               the starting model: violation and false-refusal rates, every judged answer
  train/                         an SFT run (its own manifest; loss on the last answer) on distill_train.jsonl
  model -> train/model           the distilled model, so that a later stage can name this run directory
  eval_after.json, distill_gains.png, safety_eval.png, report.md
Each step's output marks it done: `--resume` (or a later invocation with other `steps`) skips finished steps
and resumes training from its last checkpoint. Under torchrun only `steps: [train]` runs (distillation and
evaluation are single-process; see recipes/llama2-7b/safety.yaml for the three commands).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from chatalign.errors import ConfigError, RunError
from chatalign.safety.config import SafetyConfig
from chatalign.sft.derived_run import (
    DerivedStage,
    after_eval_due,
    check_replay,
    finished_train_metrics,
    last_turn_sft_config,
    record_progress,
    run_derived_stage,
)

log = logging.getLogger(__name__)

BEFORE, AFTER = "before", "after"


def model_info(name: str) -> dict:
    """What a run directory says about itself (stage, kind, parents, config hash), for the lineage."""
    from chatalign.models import resolve_model_path

    p = Path(name)
    info: dict = {"name": name, "resolved": resolve_model_path(name)}
    if (p / "manifest.json").is_file():
        m = json.loads((p / "manifest.json").read_text(encoding="utf-8"))
        info.update({"run_dir": str(p.resolve()), "stage": m.get("stage"), "status": m.get("status"),
                     "config_hash": m.get("config_hash"), "parents": m.get("parents", [])})
        if m.get("stage") == "reward":
            info["kind"] = (m.get("config") or {}).get("kind")
    return info


def lineage(cfg: SafetyConfig) -> tuple[list[str], dict]:
    """Parents (the starting model's and the safety RM's directories) and the lineage block of the manifest."""
    start, rm = model_info(cfg.model.name), model_info(cfg.safety_rm.name)
    parents = [str(Path(n).resolve()) for n in (cfg.model.name, cfg.safety_rm.name) if Path(n).exists()]
    return parents, {"start_model": start, "safety_rm": rm, "train_run": "train", "model": "model -> train/model"}


def check_safety_rm(rm_cfg) -> dict:
    """The RM (a SafetyRM section) exists, is a scalar sequence-classification model, and (for a reward run)
    is a safety RM; reads only its config, not its weights."""
    from transformers import AutoConfig

    from chatalign.errors import UserError

    try:
        info = model_info(rm_cfg.name)
    except UserError as exc:
        raise ConfigError(f"safety_rm.name: {exc}; train one first (chatalign reward with kind: safety, e.g. "
                          "recipes/quickstart/reward_safety.yaml) or point to an existing one") from None
    try:
        rm_config = AutoConfig.from_pretrained(info["resolved"])
    except (OSError, ValueError) as exc:
        raise ConfigError(f"safety_rm.name={rm_cfg.name}: cannot read a model config: {exc}") from None
    archs = rm_config.architectures or []
    if getattr(rm_config, "num_labels", None) != 1 or not any(a.endswith("ForSequenceClassification") for a in archs):
        found = ", ".join(archs) or "no architecture"
        raise ConfigError(f"safety_rm.name={rm_cfg.name} is not a reward model (found {found} with "
                          f"num_labels={getattr(rm_config, 'num_labels', None)})")
    if info.get("kind") not in (None, "safety") and not rm_cfg.allow_other_kind:
        raise ConfigError(f"safety_rm.name={rm_cfg.name} is a `{info['kind']}` reward run, not a safety "
                          "one; set safety_rm.allow_other_kind=true to use it anyway")
    return info


def prepare(cfg: SafetyConfig) -> dict:
    """Everything before the models (what --dry-run checks): templates, prompts, eval files, the RM's config,
    and a training row that renders with trained tokens."""
    from chatalign.models import load_tokenizer
    from chatalign.safety.distill_sampling import load_distill_prompts, messages_of, preprompted
    from chatalign.safety.evaluate import load_eval_sets
    from chatalign.safety.taxonomy import load_templates
    from chatalign.text.masks import encode_chat
    from chatalign.text.templates import apply_named_template

    templates = load_templates(cfg.distill.templates)
    prompts, stats = load_distill_prompts(cfg.distill)
    with_ctx = preprompted(prompts, templates, cfg.distill.placement, cfg.distill.use_answer_template)
    cats: dict[str, int] = {}
    for p in prompts:
        cats[p.risk_category or "unspecified"] = cats.get(p.risk_category or "unspecified", 0) + 1
    stats.update({"adversarial_prompts": len(prompts), "by_category": dict(sorted(cats.items())),
                  "preprompted_example": with_ctx[0]})
    stats["eval_prompts"] = {k: len(v) for k, v in load_eval_sets(cfg.eval).items()}
    stats["safety_rm"] = check_safety_rm(cfg.safety_rm)
    stats["replay_rows"] = check_replay(cfg)
    if cfg.independent.enabled:
        from chatalign.evaluation.stage_hook import check_data
        from chatalign.safety.independent import SUITES

        stats["independent"] = check_data(cfg.independent, SUITES)
    tok = load_tokenizer(cfg.model.name, cfg.model.trust_remote_code)
    apply_named_template(tok, cfg.model.chat_template)
    probe = messages_of(prompts[0]) + [{"role": "assistant", "content": "I can't help with that."}]
    enc = encode_chat(tok, probe, train_on="last_assistant")
    if enc.n_trained == 0:
        raise ConfigError("the chat template gives the answer of a distillation row no trained token")
    stats["probe_row_tokens"] = len(enc.input_ids)
    return stats


def run_distill(cfg: SafetyConfig, model, tok, scorer, data_dir: Path, progress: bool) -> dict:
    from chatalign.data_schemas import write_jsonl
    from chatalign.runs import write_json_atomic
    from chatalign.safety.distill import distill_stats, training_conversations
    from chatalign.safety.distill_sampling import build_candidates, load_distill_prompts
    from chatalign.safety.taxonomy import load_templates

    t0 = time.perf_counter()
    templates = load_templates(cfg.distill.templates)
    prompts, load_stats = load_distill_prompts(cfg.distill)
    candidates, generation = build_candidates(model, tok, scorer, prompts, templates, cfg.distill,
                                              cfg.safety_rm.batch_tokens, progress)
    rows = training_conversations(candidates)
    write_jsonl(data_dir / "distill_candidates.jsonl", [c.to_dict() for c in candidates])
    if not rows:
        raise RunError("context distillation kept no answer (the safety RM never scored the preprompted answer "
                       f"higher by more than margin={cfg.distill.margin}); see {data_dir / 'distill_candidates.jsonl'}")
    write_jsonl(data_dir / "distill_train.jsonl", rows)
    result = {"load": load_stats, "stats": distill_stats(candidates), "generation": generation,
              "seconds": round(time.perf_counter() - t0, 1)}
    write_json_atomic(data_dir / "distill.json", result)  # written last: its presence marks the step done
    log.info("distillation: kept %d of %d", result["stats"]["all"]["kept"], result["stats"]["all"]["candidates"])
    return result


def run_eval(cfg: SafetyConfig, model, tok, scorer, path: Path, progress: bool) -> dict:
    from chatalign.runs import write_json_atomic
    from chatalign.safety.evaluate import evaluate_safety, load_eval_sets

    t0 = time.perf_counter()
    res = evaluate_safety(model, tok, scorer, load_eval_sets(cfg.eval), cfg.eval, cfg.safety_rm.batch_tokens,
                          progress)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    write_json_atomic(path, res)
    return res


def sft_config_for(cfg: SafetyConfig, run_path: Path):
    """The SFT run on the kept rows: the loss on the distilled (last) answer only."""
    return last_turn_sft_config(cfg, run_path, "distill_train.jsonl", "drop_oldest_turns")


def run_safety(cfg: SafetyConfig, resume: bool = False, progress: bool = True) -> dict:
    from chatalign.runs import RunDir

    run = RunDir(cfg.output_dir, "safety")
    train_run = RunDir(run.path / "train", "sft")
    files = {"distill": run.path / "data" / "distill.json", BEFORE: run.path / "eval_before.json",
             AFTER: run.path / "eval_after.json"}

    def start() -> None:
        check_safety_rm(cfg.safety_rm)
        parents, _ = lineage(cfg)
        e = cfg.eval
        inputs = {"templates": cfg.distill.templates, "eval_adversarial": e.adversarial,
                  "eval_helpful": e.helpful, "eval_borderline": e.borderline,
                  **{f"prompts_{i}": p for i, p in enumerate(cfg.distill.prompts)}}
        run.start(cfg.model_dump(mode="json"), inputs, parents=parents, resume=resume,
                  allow_changed_inputs=cfg.allow_changed_inputs)
        _single_process_steps(cfg, files, progress)

    def evaluate_after() -> None:
        if after_eval_due(cfg.steps, cfg.eval.any_data, files[AFTER], train_run):
            from chatalign.safety.sampling import load_safety_scorer, open_policy_generator

            generator, tok = open_policy_generator(str(train_run.model_dir), cfg)
            scorer = load_safety_scorer(cfg.safety_rm)
            log.info("evaluating the distilled model")
            run_eval(cfg, generator, tok, scorer, files[AFTER], progress)
            generator.close()
        from chatalign.safety.independent import run_safety_independent

        run_safety_independent(cfg, run, train_run, files, progress)

    stage = DerivedStage(
        command="safety", what="safety", first_step="distill", first_step_noun="distillation",
        prepare=lambda: prepare(cfg), start=start, sft_config=lambda: sft_config_for(cfg, run.path),
        evaluate_after=evaluate_after, summarize=lambda: _summarize(cfg, run, train_run, files))
    return run_derived_stage(stage, run, train_run, cfg.steps, resume, progress)


def _single_process_steps(cfg: SafetyConfig, files: dict[str, Path], progress: bool) -> None:
    """Distillation and the starting model's evaluation share one loaded policy and RM."""
    todo_distill = "distill" in cfg.steps and not files["distill"].is_file()
    todo_before = "evaluate_before" in cfg.steps and cfg.eval.any_data and not files[BEFORE].is_file()
    if not (todo_distill or todo_before):
        return
    from chatalign.safety.sampling import load_safety_scorer, open_policy_generator

    generator, tok = open_policy_generator(cfg.model.name, cfg)
    scorer = load_safety_scorer(cfg.safety_rm)
    if todo_distill:
        log.info("context distillation with %s", cfg.model.name)
        run_distill(cfg, generator, tok, scorer, files["distill"].parent, progress)
    if todo_before:
        log.info("evaluating the starting model")
        run_eval(cfg, generator, tok, scorer, files[BEFORE], progress)
    generator.close()
    del scorer


def summary_of(distill: dict | None, results: dict[str, dict], comparison: dict | None) -> dict:
    """Flat numbers for the manifest and the CLI: kept counts and gains, rates before/after."""
    out: dict = {}
    if distill:
        st = distill["stats"]
        out.update({"distill_candidates": st["all"]["candidates"], "distill_kept": st["all"]["kept"],
                    "distill_mean_gain": st["all"]["mean_gain"], "distill_mean_gain_kept": st["all"]["mean_gain_kept"],
                    **{f"distill_kept_{c}": v["kept"] for c, v in st["by_category"].items()}})
    for label, res in results.items():
        for key in ("violation", "false_refusal_helpful", "false_refusal_borderline"):
            if res.get(key):
                out[f"{label}_{key}_rate"] = res[key]["rate"]
    if comparison:
        out.update({k: v for k, v in comparison.items() if k != "false_refusal_bound"})
    return out


def _summarize(cfg: SafetyConfig, run, train_run, files: dict[str, Path]) -> dict:
    from chatalign.safety.evaluate import compare
    from chatalign.safety.report import plot_eval, plot_gains, write_report

    distill = json.loads(files["distill"].read_text()) if files["distill"].is_file() else None
    results = {label: json.loads(files[label].read_text()) for label in (BEFORE, AFTER) if files[label].is_file()}
    comparison = compare(results[BEFORE], results[AFTER], cfg.eval.false_refusal_bound) \
        if len(results) == 2 else None
    summary = summary_of(distill, results, comparison)
    train_metrics = finished_train_metrics(train_run)
    if train_metrics is not None:
        summary["train"] = train_metrics
    if distill:
        cand_file = run.path / "data" / "distill_candidates.jsonl"
        candidates = [json.loads(x) for x in cand_file.read_text(encoding="utf-8").splitlines() if x.strip()]
        plot_gains(candidates, run.path / "distill_gains.png", cfg.distill.margin)
    if results:
        plot_eval(results, run.path / "safety_eval.png", "Safety before/after context distillation")
    write_report(run.path, cfg, summary, distill, results, comparison)
    return record_progress(run, summary, lineage(cfg)[1], {
        "distill": distill is not None, "evaluate_before": BEFORE in results, "train": "train" in summary,
        "evaluate_after": AFTER in results},
        finished=distill is not None and "train" in summary and (not cfg.eval.any_data or AFTER in results))
