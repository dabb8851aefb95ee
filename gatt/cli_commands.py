"""What `chatalign eval gatt ...` runs (`chatalign gatt --config ...` is the stage's `command`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path


def _eval_settings(model: str) -> dict:
    """Instruction and evaluation settings: a GAtt run directory's own (comparable numbers), else defaults."""
    from chatalign.gatt.config import GattEval, GattInstructions
    from chatalign.gatt.evaluate import BUNDLED_CONSTRAINTS

    manifest = Path(model) / "manifest.json"
    if manifest.is_file():
        m = json.loads(manifest.read_text(encoding="utf-8"))
        if m.get("stage") == "gatt":
            cfg = m["config"]
            return {"instructions": GattInstructions(**cfg["instructions"]), "eval": GattEval(**cfg["eval"])}
    return {"instructions": GattInstructions(constraints=str(BUNDLED_CONSTRAINTS)), "eval": GattEval()}


def report_turns(turns: int | Sequence[int] | None, default: Sequence[int]) -> list[int]:
    """Turns to report: a list as given; one number T = the paper's turns 2, 4, 6 below T, then T."""
    if turns is None:
        return sorted(set(default))
    if isinstance(turns, int):
        if turns < 1:
            from chatalign.errors import UserError

            raise UserError(f"--turns {turns}: the last turn must be >= 1")
        return sorted({t for t in (2, 4, 6) if t < turns} | {turns})
    return sorted(set(turns))


def cmd_eval(model: str, data: str | None = None, out_dir: str | None = None,
             turns: int | Sequence[int] | None = None, n_dialogues: int | None = None) -> int:
    """Adherence of `model` (run dir, HF dir or `embedded`) at the given turns (a list, or the last turn T:
    2, 4, 6 and T), with the instruction in each of the evaluation's placements; prints the table and writes
    eval_gatt.{json,md,png} into out_dir, or into `model` when it is a run directory. A GAtt run directory
    brings its own instruction and evaluation settings."""
    from chatalign.gatt.dialogues import load_dialogues
    from chatalign.gatt.evaluate import (
        BUNDLED_HELDOUT,
        PAPER_TURNS,
        EvalGroup,
        evaluate_groups,
        format_table,
        heuristic_note,
        limit_long_dialogues,
        select_dialogues,
    )
    from chatalign.gatt.instructions import InstructionSpace, synthesize_instructions
    from chatalign.gatt.report import write_eval_files
    from chatalign.models import load_causal_lm, load_tokenizer

    settings = _eval_settings(model)
    inst, ev = settings["instructions"], settings["eval"]
    turns = report_turns(turns, ev.turns or PAPER_TURNS)
    n = n_dialogues or ev.n_dialogues
    dialogues = select_dialogues(load_dialogues(data or BUNDLED_HELDOUT), n, max(turns))
    dialogues = limit_long_dialogues(dialogues, turns, ev.n_long)
    space = InstructionSpace.from_yaml(inst.constraints)
    instructions = synthesize_instructions(space, len(dialogues), ev.seed, tuple(inst.kinds or ()) or None,
                                           inst.min_kinds, inst.max_kinds, inst.terse_fraction)
    tok = load_tokenizer(model)
    lm = load_causal_lm(model, "auto")
    import torch

    if torch.cuda.is_available():
        lm = lm.to("cuda")
    groups = [EvalGroup("eval", p, dialogues, instructions) for p in ev.placements]
    res = evaluate_groups(lm, tok, groups, max_new_tokens=ev.max_new_tokens, batch_size=ev.batch_size,
                          max_prompt_tokens=ev.max_prompt_tokens, progress=True, reuse_prefix=ev.reuse_prefix)
    label = Path(model).name or str(model)
    settings_of_pass = {k: v for k, v in res.items() if k != "groups"}
    results = {f"{label} ({g.placement})": {**res["groups"][g.name], **settings_of_pass} for g in groups}
    print(format_table(results, turns))
    print(heuristic_note())
    run_dir = Path(model) if (Path(model) / "manifest.json").is_file() else None
    target = Path(out_dir) if out_dir else run_dir
    if target is not None:
        files = write_eval_files(results, target, turns, f"GAtt adherence: {label}")
        print(f"wrote {', '.join(str(p) for p in files.values())}")
    return 0
