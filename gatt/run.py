"""`chatalign gatt`: synthesize GAtt dialogues with the starting model, fine-tune on them, evaluate before/after.

Run directory (`output_dir`):
  manifest.json            stage gatt, config, input hashes, parents (the starting model), lineage
  data/gatt_samples.jsonl  every sampled dialogue: instruction, constraints, answers, checker verdicts
  data/gatt_train.jsonl    the training Conversations (instruction in the first user/system message only)
  data/synthesis.json      counts: answers sampled, kept, rejected, rows per family and turn
  eval_base.json           adherence of the untouched base model (independent.base_model), when it is not
                           the starting model
  eval_before.json         adherence of the starting model: training kinds on the bundled held-out dialogues
                           and held-out kinds (data/independent), each per placement (`chatalign.gatt.stage_eval`)
  train/                   an SFT run (its own manifest; train_on last_assistant) on data/gatt_train.jsonl
  model -> train/model     the GAtt model, so that a later stage can name this run directory as its model
  eval_after.json, adherence.png, report.md, independent.json (suite "gatt": base / before / after)
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
from chatalign.gatt.summary import AFTER, BASE, BEFORE
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



def synthesis_inputs(cfg: GattConfig):
    """The instruction space, the dialogues to synthesize on (each `instructions_per_dialogue` times) and one
    instruction per dialogue."""
    from chatalign.gatt.dialogues import Dialogue, load_dialogues
    from chatalign.gatt.instructions import InstructionSpace, synthesize_instructions

    space = InstructionSpace.from_yaml(cfg.instructions.constraints)
    s, inst = cfg.synthesis, cfg.instructions
    dialogues = [d for path in s.dialogues for d in load_dialogues(path, s.max_dialogues)]
    dialogues = [d if r == 0 else Dialogue(f"{d.id}#{r}", d.user_turns)
                 for r in range(s.instructions_per_dialogue) for d in dialogues]
    instructions = synthesize_instructions(space, len(dialogues), inst.seed, tuple(inst.kinds or ()) or None,
                                           inst.min_kinds, inst.max_kinds, inst.terse_fraction)
    return space, dialogues, instructions


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
    stats["replay_rows"] = check_replay(cfg)
    from chatalign.gatt.stage_eval import eval_groups

    for g in eval_groups(cfg):
        stats[f"eval_{g.name}"] = {"dialogues": len(g.dialogues), "answers": sum(len(d.user_turns) for d in g.dialogues)}
    tok = load_tokenizer(cfg.model.name, cfg.model.trust_remote_code)
    apply_named_template(tok, cfg.model.chat_template)
    probe = DialogueRun(dialogues[0], instructions[0], answers=["A placeholder answer."] * 2)
    k = min(2, len(dialogues[0].user_turns))
    for placement in ("first_user", "system"):
        enc = encode_chat(tok, training_messages(probe, k, placement), train_on="last_assistant")
        if enc.n_trained == 0:
            raise ConfigError(f"the chat template gives the last answer of a GAtt row ({placement} placement) "
                              "no trained token")
    stats["probe_row_tokens"] = len(enc.input_ids)
    return stats


def _load_model(cfg: GattConfig, name: str):
    from chatalign.models import load_causal_lm, load_tokenizer
    from chatalign.text.templates import apply_named_template

    tok = load_tokenizer(name, cfg.model.trust_remote_code)
    apply_named_template(tok, cfg.model.chat_template)
    model = load_causal_lm(name, cfg.model.dtype, cfg.model.trust_remote_code, cfg.model.attn_implementation)
    import torch

    if torch.cuda.is_available():
        model = model.to("cuda")
    return model, tok


def _load(cfg: GattConfig, name: str):
    """(generator, tokenizer) of model `name` with the recipe's `generation:` backend; close it when done."""
    from chatalign.rollout.generator import open_generator

    return open_generator(cfg.generation, cfg.model, name, lambda path: _load_model(cfg, path))


def run_synthesis(cfg: GattConfig, generator, tok, data_dir: Path) -> dict:
    import time

    from chatalign.data_schemas import write_jsonl
    from chatalign.gatt.sampling import model_answer_fn
    from chatalign.gatt.synthesis import pass_rates, placements_for, repair_counts, synthesize, training_rows
    from chatalign.runs import write_json_atomic

    s = cfg.synthesis
    cpu0 = time.process_time()
    _, dialogues, instructions = synthesis_inputs(cfg)
    counters: dict = {}
    answer = model_answer_fn(generator, tok, max_new_tokens=s.max_new_tokens, temperature=s.temperature, top_p=s.top_p,
                             batch_size=s.batch_size, seed=s.seed, max_prompt_tokens=s.max_prompt_tokens,
                             counters=counters, reuse_prefix=s.reuse_prefix)
    runs, stats = synthesize(dialogues, instructions, answer, max_turns=s.max_turns, candidates=s.candidates_per_turn,
                             reject=s.reject_failing, repair=s.repair, unfinished=s.unfinished,
                             on_turn=lambda t, n: log.info("synthesis turn %d/%d", t, n))
    places = placements_for(len(runs), s.system_share, s.seed)
    rows, row_stats = training_rows(runs, placement=places, min_turn=s.min_turn, reject=s.reject_failing,
                                    on_failure=s.on_failure)
    write_jsonl(data_dir / "gatt_samples.jsonl", [r.to_dict() for r in runs])
    if not rows:
        raise RunError("GAtt synthesis kept no training row (every answer failed its constraints?); see "
                       f"{data_dir / 'gatt_samples.jsonl'}; try more candidates_per_turn or reject_failing=false")
    write_jsonl(data_dir / "gatt_train.jsonl", rows)
    result = {"synthesis": stats, "rows": row_stats, "pass_rates": pass_rates(runs), "repaired": repair_counts(runs),
              "generation": {k: round(v, 2) if isinstance(v, float) else v for k, v in counters.items()},
              "cpu_seconds": round(time.process_time() - cpu0, 1)}
    write_json_atomic(data_dir / "synthesis.json", result)  # written last: its presence marks the step done
    log.info("GAtt synthesis: %s", json.dumps({**stats, "rows": row_stats["rows"], "rejected": row_stats["rejected"]}))
    return result


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


def eval_files(run_path: Path) -> dict[str, Path]:
    """label -> evaluation file of the run: the base model, the starting model, the GAtt model."""
    return {BASE: run_path / "eval_base.json", BEFORE: run_path / "eval_before.json",
            AFTER: run_path / "eval_after.json"}


def run_gatt(cfg: GattConfig, resume: bool = False, progress: bool = True) -> dict:
    from chatalign.gatt.stage_eval import has_eval, heldout_files, run_eval
    from chatalign.runs import RunDir

    run = RunDir(cfg.output_dir, "gatt")
    train_run = RunDir(run.path / "train", "sft")
    synth_file, files = run.path / "data" / "synthesis.json", eval_files(run.path)

    def start() -> None:
        parents, _ = _lineage(cfg)
        inputs = {"constraints": cfg.instructions.constraints, "eval": cfg.eval.data, **heldout_files(cfg),
                  **{f"dialogues_{i}": p for i, p in enumerate(cfg.synthesis.dialogues)}}
        run.start(cfg.model_dump(mode="json"), inputs, parents=parents, resume=resume,
                  allow_changed_inputs=cfg.allow_changed_inputs)
        _single_process_steps(cfg, run.path, synth_file, files)

    def evaluate_after() -> None:
        if after_eval_due(cfg.steps, has_eval(cfg), files[AFTER], train_run):
            generator, tok = _load(cfg, str(train_run.model_dir))
            log.info("evaluating the GAtt model")
            run_eval(cfg, generator, tok, files[AFTER])
            generator.close()
        _independent(cfg, run.path, train_run, files, progress)

    stage = DerivedStage(
        command="gatt", what="GAtt", first_step="synthesize", first_step_noun="synthesis",
        prepare=lambda: prepare(cfg), start=start, sft_config=lambda: sft_config_for(cfg, run.path),
        evaluate_after=evaluate_after,
        summarize=lambda: _summarize(cfg, run, train_run, synth_file, files))
    return run_derived_stage(stage, run, train_run, cfg.steps, resume, progress)


def _single_process_steps(cfg: GattConfig, run_path: Path, synth_file: Path, files: dict[str, Path]) -> None:
    """Synthesis and the starting model's evaluation share one loaded model; the base model's evaluation
    (when it is another model; cached) belongs to the evaluate_before step."""
    from chatalign.gatt.stage_eval import base_is_start, evaluate_base, has_eval, run_eval

    todo_synth = "synthesize" in cfg.steps and not synth_file.is_file()
    todo_before = "evaluate_before" in cfg.steps and has_eval(cfg) and not files[BEFORE].is_file()
    todo_base = ("evaluate_before" in cfg.steps and cfg.independent.gatt_on() and cfg.independent.gatt.evaluate_base
                 and not base_is_start(cfg) and not files[BASE].is_file())
    if todo_synth or todo_before:
        generator, tok = _load(cfg, cfg.model.name)
        if todo_synth:
            log.info("synthesizing GAtt dialogues with %s", cfg.model.name)
            run_synthesis(cfg, generator, tok, synth_file.parent)
        if todo_before:
            log.info("evaluating the starting model")
            run_eval(cfg, generator, tok, files[BEFORE])
        generator.close()
    if todo_base:
        evaluate_base(cfg, run_path, files[BASE], lambda name: _load(cfg, name))


def _independent(cfg: GattConfig, run_path: Path, train_run, files: dict[str, Path], progress: bool) -> None:
    """independent.json once the GAtt model is trained and evaluated (the core suites run here)."""
    from chatalign.gatt.stage_eval import write_independent_file

    if ("evaluate_after" not in cfg.steps or not cfg.independent.enabled or not train_run.is_finished()
            or (run_path / "independent.json").is_file()):
        return
    results = {label: json.loads(f.read_text()) for label, f in files.items() if f.is_file()}
    write_independent_file(cfg, run_path, results, progress)


def _summarize(cfg: GattConfig, run, train_run, synth_file: Path, files: dict[str, Path]) -> dict:
    from chatalign.gatt.report import write_report
    from chatalign.gatt.stage_eval import has_eval
    from chatalign.gatt.summary import eval_metrics, synthesis_metrics

    synth = json.loads(synth_file.read_text()) if synth_file.is_file() else None
    results = {label: json.loads(f.read_text()) for label, f in files.items() if f.is_file()}
    summary: dict = synthesis_metrics(synth) if synth else {}
    train_metrics = finished_train_metrics(train_run)
    if train_metrics is not None:
        summary["train"] = train_metrics
    summary.update(eval_metrics(results))
    write_report(run.path, cfg, summary, synth, results)
    lineage = {"start_model": _lineage(cfg)[1], "train_run": "train", "model": "model -> train/model"}
    return record_progress(run, summary, lineage, {
        "synthesize": synth is not None, "evaluate_before": BEFORE in results, "train": "train" in summary,
        "evaluate_after": AFTER in results},
        finished=synth is not None and "train" in summary and (not has_eval(cfg) or AFTER in results))
