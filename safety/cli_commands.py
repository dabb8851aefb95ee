"""What `chatalign eval safety ...` runs (`chatalign safety --config ...` is the stage's `command`)."""

from __future__ import annotations

import json
from pathlib import Path

from chatalign.errors import UserError

EVAL_FILES = {"adversarial": "safety_adversarial_heldout.jsonl", "helpful": "helpful_eval.jsonl",
              "borderline": "safety_borderline.jsonl"}


def eval_settings(model: str, safety_rm: str | None, data_dir: str | None, **overrides):
    """(SafetyEval, safety RM section): a safety run directory's own settings (comparable numbers), else the
    defaults on the files of `data_dir` (default: the bundled quickstart data); `overrides` win."""
    from chatalign.safety.config import SafetyEval, SafetyRM
    from chatalign.safety.taxonomy import BUNDLED_DATA

    ev, rm = None, None
    manifest = Path(model) / "manifest.json"
    if manifest.is_file():
        m = json.loads(manifest.read_text(encoding="utf-8"))
        if m.get("stage") == "safety":
            ev, rm = SafetyEval(**m["config"]["eval"]), SafetyRM(**m["config"]["safety_rm"])
    if ev is None or data_dir is not None:
        folder = Path(data_dir) if data_dir else BUNDLED_DATA
        paths = {k: folder / name for k, name in EVAL_FILES.items()}
        if not any(p.is_file() for p in paths.values()):
            raise UserError(f"{folder}: none of {', '.join(EVAL_FILES.values())} is there")
        base = ev.model_dump() if ev is not None else {}
        base.update({k: str(p) if p.is_file() else None for k, p in paths.items()})
        ev = SafetyEval(**base)
    if safety_rm is not None:
        rm = SafetyRM(name=safety_rm, allow_other_kind=rm.allow_other_kind if rm else False)
    if rm is None:
        raise UserError("no safety reward model: pass --safety-rm (a reward run directory of kind safety)")
    given = {k: v for k, v in overrides.items() if v is not None}
    if given:
        ev = SafetyEval(**{**ev.model_dump(), **given})
    return ev, rm


def cmd_eval(model: str, safety_rm: str | None, out_dir: str | None, data_dir: str | None = None,
             threshold: float | None = None, violation_rule: str | None = None, max_prompts: int | None = None,
             max_new_tokens: int | None = None) -> int:
    """Violation and false-refusal rates of `model` (run dir, HF dir or `embedded`); prints the table and writes
    eval_safety.{json,md,png} into out_dir, or into `model` when it is a run directory."""
    from chatalign.safety.evaluate import evaluate_safety, load_eval_sets
    from chatalign.safety.report import eval_table, judge_lines, rule_text, write_eval_files
    from chatalign.safety.run import check_safety_rm
    from chatalign.safety.sampling import load_policy, load_safety_scorer
    from chatalign.training.config import ModelConfig

    ev, rm = eval_settings(model, safety_rm, data_dir, threshold=threshold, violation_rule=violation_rule,
                           max_prompts=max_prompts, max_new_tokens=max_new_tokens)
    check_safety_rm(rm)
    sets = load_eval_sets(ev)
    policy, tok = load_policy(model, ModelConfig(name=model))
    scorer = load_safety_scorer(rm)
    res = evaluate_safety(policy, tok, scorer, sets, ev, rm.batch_tokens, progress=True)
    label = Path(model).name or str(model)
    results = {label: res}
    print(f"rule: {rule_text(res['settings'])}")
    print(eval_table(results))
    for line in judge_lines(results):
        print(line)
    run_dir = Path(model) if (Path(model) / "manifest.json").is_file() else None
    target = Path(out_dir) if out_dir else run_dir
    if target is not None:
        files = write_eval_files(results, target, f"Safety evaluation: {label}")
        print(f"wrote {', '.join(str(p) for p in files.values())}")
    return 0
