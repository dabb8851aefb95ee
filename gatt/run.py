"""`chatalign gatt`: synthesize GAtt dialogues with the starting model, fine-tune on them, evaluate before/after.

Run directory (`output_dir`):
  manifest.json            stage gatt, config, input hashes, parents (the starting model), lineage
  data/gatt_samples.jsonl  every sampled dialogue: instruction, constraints, answers, checker verdicts
  data/gatt_train.jsonl    the training Conversations (instruction in the first user/system message only)
  data/synthesis.json      counts: answers sampled, kept, rejected, rows per family and turn
  eval_before.json         adherence of the starting model on the held-out dialogues
  train/                   an SFT run (its own manifest; train_on last_assistant) on data/gatt_train.jsonl
  model -> train/model     the GAtt model, so that a later stage can name this run directory as its model
  eval_after.json, adherence.png, report.md
Each step's output marks it done: `--resume` (or a later invocation with other `steps`) skips finished steps
and resumes training from its last checkpoint. Under torchrun (several ranks) only `steps: [train]` runs:
synthesis and evaluation are single-process (see recipes/llama2-7b/gatt.yaml for the three commands).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from chatalign.errors import ConfigError, RunError
from chatalign.gatt.config import GattConfig
from chatalign.sft.derived_run import (
    DerivedStage,
    after_eval_due,
    finished_train_metrics,
    last_turn_sft_config,
    record_progress,
    run_derived_stage,
)

log = logging.getLogger(__name__)

BEFORE, AFTER = "before GAtt", "after GAtt"


def synthesis_inputs(cfg: GattConfig):
    """The instruction space, the dialogues to synthesize on, and one instruction per dialogue."""
    from chatalign.gatt.dialogues import load_dialogues
    from chatalign.gatt.instructions import InstructionSpace, synthesize_instructions

    space = InstructionSpace.from_yaml(cfg.instructions.constraints)
    dialogues = [d for path in cfg.synthesis.dialogues for d in load_dialogues(path, cfg.synthesis.max_dialogues)]
    instructions = synthesize_instructions(space, len(dialogues), cfg.instructions.seed, tuple(cfg.instructions.families),
                                           cfg.instructions.min_families, cfg.instructions.max_families,
                                           cfg.instructions.terse_fraction)
    return space, dialogues, instructions


def eval_inputs(cfg: GattConfig, space):
    """Held-out dialogues (those reaching the last reported turn first) and their instructions (eval seed)."""
    from chatalign.gatt.dialogues import load_dialogues
    from chatalign.gatt.evaluate import limit_long_dialogues, select_dialogues
    from chatalign.gatt.instructions import synthesize_instructions

    dialogues = select_dialogues(load_dialogues(cfg.eval.data), cfg.eval.n_dialogues, max(cfg.eval.turns))
    dialogues = limit_long_dialogues(dialogues, cfg.eval.turns, cfg.eval.n_long)
    instructions = synthesize_instructions(space, len(dialogues), cfg.eval.seed, tuple(cfg.instructions.families),
                                           cfg.instructions.min_families, cfg.instructions.max_families,
                                           cfg.instructions.terse_fraction)
    return dialogues, instructions


def prepare(cfg: GattConfig) -> dict:
    """Everything before the model (what --dry-run checks): inputs load, a row renders with a trained answer."""
    from chatalign.gatt.synthesis import training_messages
    from chatalign.gatt.turns import DialogueRun
    from chatalign.models import load_tokenizer
    from chatalign.text.masks import encode_chat
    from chatalign.text.templates import apply_named_template

    space, dialogues, instructions = synthesis_inputs(cfg)
    limit = cfg.synthesis.max_turns
    stats = {"dialogues": len(dialogues),
             "turns_to_answer": sum(min(len(d.user_turns), limit or len(d.user_turns)) for d in dialogues),
             "terse_instructions": sum(i.terse for i in instructions),
             "instruction_examples": [i.text for i in instructions[:4]]}
    if cfg.eval.data:
        eval_dialogues, _ = eval_inputs(cfg, space)
        stats["eval_dialogues"] = len(eval_dialogues)
        stats["eval_reaching_last_turn"] = sum(len(d.user_turns) >= max(cfg.eval.turns) for d in eval_dialogues)
    tok = load_tokenizer(cfg.model.name, cfg.model.trust_remote_code)
    apply_named_template(tok, cfg.model.chat_template)
    probe = DialogueRun(dialogues[0], instructions[0], answers=["A placeholder answer."] * 2)
    k = min(2, len(dialogues[0].user_turns))
    enc = encode_chat(tok, training_messages(probe, k, cfg.synthesis.placement), train_on="last_assistant")
    if enc.n_trained == 0:
        raise ConfigError("the chat template gives the last answer of a GAtt row no trained token")
    stats["probe_row_tokens"] = len(enc.input_ids)
    return stats


def _load(cfg: GattConfig, name: str):
    from chatalign.models import load_causal_lm, load_tokenizer
    from chatalign.text.templates import apply_named_template

    tok = load_tokenizer(name, cfg.model.trust_remote_code)
    apply_named_template(tok, cfg.model.chat_template)
    model = load_causal_lm(name, cfg.model.dtype, cfg.model.trust_remote_code, cfg.model.attn_implementation)
    import torch

    if torch.cuda.is_available():
        model = model.to("cuda")
    return model, tok


def run_synthesis(cfg: GattConfig, model, tok, data_dir: Path) -> dict:
    import time

    from chatalign.data_schemas import write_jsonl
    from chatalign.gatt.sampling import model_answer_fn
    from chatalign.gatt.synthesis import pass_rates, synthesize, training_rows
    from chatalign.runs import write_json_atomic

    s = cfg.synthesis
    cpu0 = time.process_time()
    _, dialogues, instructions = synthesis_inputs(cfg)
    counters: dict = {}
    answer = model_answer_fn(model, tok, max_new_tokens=s.max_new_tokens, temperature=s.temperature, top_p=s.top_p,
                             batch_size=s.batch_size, seed=s.seed, max_prompt_tokens=s.max_prompt_tokens,
                             counters=counters, reuse_prefix=s.reuse_prefix)
    runs, stats = synthesize(dialogues, instructions, answer, max_turns=s.max_turns, candidates=s.candidates_per_turn,
                             reject=s.reject_failing, unfinished=s.unfinished,
                             on_turn=lambda t, n: log.info("synthesis turn %d/%d", t, n))
    rows, row_stats = training_rows(runs, placement=s.placement, min_turn=s.min_turn, reject=s.reject_failing,
                                    on_failure=s.on_failure)
    write_jsonl(data_dir / "gatt_samples.jsonl", [r.to_dict() for r in runs])
    if not rows:
        raise RunError("GAtt synthesis kept no training row (every answer failed its constraints?); see "
                       f"{data_dir / 'gatt_samples.jsonl'}; try more candidates_per_turn or reject_failing=false")
    write_jsonl(data_dir / "gatt_train.jsonl", rows)
    result = {"synthesis": stats, "rows": row_stats, "pass_rates": pass_rates(runs),
              "generation": {k: round(v, 2) if isinstance(v, float) else v for k, v in counters.items()},
              "cpu_seconds": round(time.process_time() - cpu0, 1)}
    write_json_atomic(data_dir / "synthesis.json", result)  # written last: its presence marks the step done
    log.info("GAtt synthesis: %s", json.dumps({**stats, "rows": row_stats["rows"], "rejected": row_stats["rejected"]}))
    return result


def run_eval(cfg: GattConfig, model, tok, path: Path) -> dict:
    from chatalign.gatt.evaluate import evaluate_adherence
    from chatalign.gatt.instructions import InstructionSpace
    from chatalign.runs import write_json_atomic

    dialogues, instructions = eval_inputs(cfg, InstructionSpace.from_yaml(cfg.instructions.constraints))
    e = cfg.eval
    res = evaluate_adherence(model, tok, dialogues, instructions, placement=e.placement, max_turn=max(e.turns),
                             max_new_tokens=e.max_new_tokens, batch_size=e.batch_size,
                             max_prompt_tokens=e.max_prompt_tokens, progress=True, reuse_prefix=e.reuse_prefix)
    write_json_atomic(path, res)
    return res


def sft_config_for(cfg: GattConfig, run_path: Path):
    """The SFT run that trains on the GAtt rows: the loss on the last assistant turn only."""
    # truncate_right, not drop_oldest_turns: dropping the oldest round would drop the instruction itself
    return last_turn_sft_config(cfg, run_path, "gatt_train.jsonl", "truncate_right")


def _lineage(cfg: GattConfig) -> tuple[list[str], dict]:
    from chatalign.models import resolve_model_path

    name = cfg.model.name
    p = Path(name)
    parents = [str(p.resolve())] if p.exists() else []
    start = {"name": name, "resolved": resolve_model_path(name)}
    if (p / "manifest.json").is_file():
        parent = json.loads((p / "manifest.json").read_text(encoding="utf-8"))
        start.update({"stage": parent.get("stage"), "parents": parent.get("parents", [])})
    return parents, start


def run_gatt(cfg: GattConfig, resume: bool = False, progress: bool = True) -> dict:
    from chatalign.runs import RunDir

    run = RunDir(cfg.output_dir, "gatt")
    train_run = RunDir(run.path / "train", "sft")
    synth_file, before_file, after_file = run.path / "data" / "synthesis.json", run.path / "eval_before.json", \
        run.path / "eval_after.json"

    def start() -> None:
        parents, _ = _lineage(cfg)
        inputs = {"constraints": cfg.instructions.constraints, "eval": cfg.eval.data,
                  **{f"dialogues_{i}": p for i, p in enumerate(cfg.synthesis.dialogues)}}
        run.start(cfg.model_dump(mode="json"), inputs, parents=parents, resume=resume,
                  allow_changed_inputs=cfg.allow_changed_inputs)
        _single_process_steps(cfg, synth_file, before_file)

    def evaluate_after() -> None:
        if after_eval_due(cfg.steps, bool(cfg.eval.data), after_file, train_run):
            model, tok = _load(cfg, str(train_run.model_dir))
            log.info("evaluating the GAtt model")
            run_eval(cfg, model, tok, after_file)

    stage = DerivedStage(
        command="gatt", what="GAtt", first_step="synthesize", first_step_noun="synthesis",
        prepare=lambda: prepare(cfg), start=start, sft_config=lambda: sft_config_for(cfg, run.path),
        evaluate_after=evaluate_after,
        summarize=lambda: _summarize(cfg, run, train_run, synth_file, before_file, after_file))
    return run_derived_stage(stage, run, train_run, cfg.steps, resume, progress)


def _single_process_steps(cfg: GattConfig, synth_file: Path, before_file: Path) -> None:
    """Synthesis and the starting model's evaluation share one loaded model."""
    todo_synth = "synthesize" in cfg.steps and not synth_file.is_file()
    todo_before = "evaluate_before" in cfg.steps and cfg.eval.data and not before_file.is_file()
    if not (todo_synth or todo_before):
        return
    model, tok = _load(cfg, cfg.model.name)
    if todo_synth:
        log.info("synthesizing GAtt dialogues with %s", cfg.model.name)
        run_synthesis(cfg, model, tok, synth_file.parent)
    if todo_before:
        log.info("evaluating the starting model")
        run_eval(cfg, model, tok, before_file)
    del model


def _summarize(cfg: GattConfig, run, train_run, synth_file: Path, before_file: Path, after_file: Path) -> dict:
    from chatalign.gatt.report import plot_adherence, write_report

    synth = json.loads(synth_file.read_text()) if synth_file.is_file() else None
    results = {label: json.loads(f.read_text()) for label, f in ((BEFORE, before_file), (AFTER, after_file))
               if f.is_file()}
    summary: dict = {}
    if synth:
        summary.update({"synth_rows": synth["rows"]["rows"], "synth_rejected": synth["rows"]["rejected"],
                        "synth_answers": synth["synthesis"]["turns_answered"],
                        "synth_pass_rate": round(synth["synthesis"]["turns_passing"]
                                                 / max(1, synth["synthesis"]["turns_answered"]), 4)})
    train_metrics = finished_train_metrics(train_run)
    if train_metrics is not None:
        summary["train"] = train_metrics
    for label, res in results.items():
        key = "before" if label == BEFORE else "after"
        for t in cfg.eval.turns:
            row = res["by_turn"].get(str(t))
            summary[f"{key}_adherence_t{t}"] = round(row["all"], 4) if row else None
    if results:
        plot_adherence(results, run.path / "adherence.png", cfg.eval.turns, "GAtt adherence by turn")
    write_report(run.path, cfg, summary, synth, results)
    lineage = {"start_model": _lineage(cfg)[1], "train_run": "train", "model": "model -> train/model"}
    return record_progress(run, summary, lineage, {
        "synthesize": synth is not None, "evaluate_before": BEFORE in results, "train": "train" in summary,
        "evaluate_after": AFTER in results},
        finished=synth is not None and "train" in summary and (not cfg.eval.data or AFTER in results))
