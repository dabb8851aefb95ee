"""The GAtt stage's evaluation: which groups (suite x placement) a model is evaluated on, and one batched pass
per model (the base model, the starting model, the GAtt model), each written to its JSON file.

  in_distribution/<placement>  the training kinds (`instructions`, drawn with eval.seed) on the bundled
                               held-out dialogues (`eval.data`), eval.n_dialogues per placement
  independent/<placement>      the held-out kinds of data/independent (`independent`), never trained on
"""

from __future__ import annotations

import logging
from pathlib import Path

from chatalign.gatt.config import GattConfig
from chatalign.gatt.evaluate import EvalGroup

log = logging.getLogger(__name__)


def in_distribution_groups(cfg: GattConfig, space) -> list[EvalGroup]:
    """One group per eval placement: the same dialogues and instructions for each."""
    from chatalign.gatt.dialogues import load_dialogues
    from chatalign.gatt.evaluate import limit_long_dialogues, select_dialogues
    from chatalign.gatt.instructions import synthesize_instructions

    e, inst = cfg.eval, cfg.instructions
    if not e.data:
        return []
    dialogues = select_dialogues(load_dialogues(e.data), e.n_dialogues, max(e.turns))
    dialogues = limit_long_dialogues(dialogues, e.turns, e.n_long)
    instructions = synthesize_instructions(space, len(dialogues), e.seed, tuple(inst.kinds or ()) or None,
                                           inst.min_kinds, inst.max_kinds, inst.terse_fraction)
    return [EvalGroup("in_distribution", p, dialogues, instructions) for p in e.placements]


def independent_groups(cfg: GattConfig) -> list[EvalGroup]:
    from chatalign.gatt.independent_set import heldout_pairs

    ind = cfg.independent
    if not ind.enabled:
        return []
    dialogues, instructions = heldout_pairs(ind.data_dir, ind.n_dialogues, ind.n_long, ind.short_turns,
                                            ind.max_turn, ind.wording)
    return [EvalGroup("independent", p, dialogues, instructions) for p in ind.placements]


def eval_groups(cfg: GattConfig) -> list[EvalGroup]:
    from chatalign.gatt.instructions import InstructionSpace

    space = InstructionSpace.from_yaml(cfg.instructions.constraints)
    return in_distribution_groups(cfg, space) + independent_groups(cfg)


def has_eval(cfg: GattConfig) -> bool:
    return bool(cfg.eval.data) or cfg.independent.enabled


def run_eval(cfg: GattConfig, model, tok, path: Path) -> dict:
    """Every group in one batched greedy pass of `model`; written to `path`."""
    from chatalign.gatt.evaluate import evaluate_groups
    from chatalign.runs import write_json_atomic

    e = cfg.eval
    res = evaluate_groups(model, tok, eval_groups(cfg), max_new_tokens=e.max_new_tokens, batch_size=e.batch_size,
                          max_prompt_tokens=e.max_prompt_tokens, progress=True, reuse_prefix=e.reuse_prefix)
    write_json_atomic(path, res)
    return res


def base_is_start(cfg: GattConfig) -> bool:
    """Whether the base model is the starting model (then its column is the "before" one, at no cost)."""
    from chatalign.models import resolve_model_path

    base = cfg.independent.base_model
    return base is None or Path(resolve_model_path(base)).resolve() == Path(resolve_model_path(cfg.model.name)).resolve()


def independent_inputs(cfg: GattConfig) -> dict:
    """The held-out files, for the run's manifest (their hashes change the run's key)."""
    from chatalign.gatt.independent_set import BUNDLED_DIR, DIALOGUES_FILE, INSTRUCTIONS_FILE

    if not cfg.independent.enabled:
        return {}
    folder = Path(cfg.independent.data_dir) if cfg.independent.data_dir else BUNDLED_DIR
    return {"independent_instructions": folder / INSTRUCTIONS_FILE, "independent_dialogues": folder / DIALOGUES_FILE}


def write_independent_file(cfg: GattConfig, run_path: Path, results: dict[str, dict], base_is_start_: bool) -> Path:
    """independent.json (suite "gatt") from the evaluation files there are so far."""
    from chatalign.gatt.summary import independent_rows
    from chatalign.models import resolve_model_path
    from chatalign.runs import write_json_atomic

    doc = {"version": 1, "model": str(run_path / "model"), "start_model": resolve_model_path(cfg.model.name),
           "rows": independent_rows(results, cfg.independent.placements, base_is_start_), "agreement": []}
    path = run_path / "independent.json"
    write_json_atomic(path, doc)
    return path
