"""The GAtt stage's evaluation: which groups (suite x placement) a model is evaluated on, one batched pass per
model (the base model, the starting model, the GAtt model), and independent.json.

  in_distribution/<placement>  the training kinds (`instructions`, drawn with eval.seed) on the bundled
                               held-out dialogues (`eval.data`), eval.n_dialogues per placement
  independent/<placement>      the held-out kinds of data/independent (`independent.gatt`), never trained on

The base model's pass is kept in the evaluation cache of `chatalign.evaluation` (key: the model's content,
these settings and the data files), so a pipeline that runs GAtt again does not pay for it twice.
"""

from __future__ import annotations

import logging
from pathlib import Path

from chatalign.gatt.config import GATT_DEFAULT_SUITES, GattConfig
from chatalign.gatt.evaluate import EvalGroup

log = logging.getLogger(__name__)
CACHE_SUITE = "gatt"


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


def heldout_files(cfg: GattConfig) -> dict[str, Path]:
    """The held-out kinds' files (none when the gatt suite is off); a ConfigError naming the key if missing."""
    from chatalign.gatt.independent_set import DIALOGUES_FILE, INSTRUCTIONS_FILE

    if not cfg.independent.gatt_on():
        return {}
    return {"independent_instructions": cfg.independent.data_file(INSTRUCTIONS_FILE),
            "independent_dialogues": cfg.independent.data_file(DIALOGUES_FILE)}


def independent_groups(cfg: GattConfig) -> list[EvalGroup]:
    from chatalign.gatt.independent_set import heldout_pairs

    files = heldout_files(cfg)
    if not files:
        return []
    g = cfg.independent.gatt
    dialogues, instructions = heldout_pairs(files["independent_instructions"], files["independent_dialogues"],
                                            g.n_dialogues, g.n_long, g.short_turns, g.max_turn, g.wording)
    return [EvalGroup("independent", p, dialogues, instructions) for p in g.placements]


def eval_groups(cfg: GattConfig) -> list[EvalGroup]:
    from chatalign.gatt.instructions import InstructionSpace

    space = InstructionSpace.from_yaml(cfg.instructions.constraints)
    return in_distribution_groups(cfg, space) + independent_groups(cfg)


def has_eval(cfg: GattConfig) -> bool:
    return bool(cfg.eval.data) or cfg.independent.gatt_on()


def run_eval(cfg: GattConfig, model, tok, path: Path | None = None, groups: list[EvalGroup] | None = None) -> dict:
    """Every group (default: all of `eval_groups`) in one batched greedy pass of `model`; written to `path`."""
    from chatalign.gatt.evaluate import evaluate_groups
    from chatalign.runs import write_json_atomic

    e = cfg.eval
    groups = eval_groups(cfg) if groups is None else groups
    res = evaluate_groups(model, tok, groups, max_new_tokens=e.max_new_tokens, batch_size=e.batch_size,
                          max_prompt_tokens=e.max_prompt_tokens, progress=True, reuse_prefix=e.reuse_prefix)
    if path is not None:
        write_json_atomic(path, res)
    return res


def base_is_start(cfg: GattConfig) -> bool:
    """Whether the base model is the starting model (then its column is the "before" one, at no cost)."""
    from chatalign.models import resolve_model_path

    base, start = resolve_model_path(cfg.independent.base_model), resolve_model_path(cfg.model.name)
    return Path(base).resolve() == Path(start).resolve()


def _cache_key(cfg: GattConfig) -> str:
    from chatalign.evaluation.cache import data_hash, model_fingerprint, result_key

    e = cfg.eval  # batch_size and reuse_prefix change how the answers are computed, not which: not in the key
    settings = {"eval": {"max_new_tokens": e.max_new_tokens, "max_prompt_tokens": e.max_prompt_tokens},
                "gatt": cfg.independent.gatt.model_dump(mode="json")}
    if cfg.generation.backend != "native":  # another engine's greedy answers may differ on near-ties
        settings["backend"] = cfg.generation.backend
    files = list(heldout_files(cfg).values())
    return result_key(CACHE_SUITE, model_fingerprint(cfg.independent.base_model), settings, data_hash(files))


def evaluate_base(cfg: GattConfig, run_path: Path, path: Path, load) -> dict:
    """The base model's pass on the held-out kinds (the column that shows an alignment tax; the training kinds
    are left out, to save the time): from the evaluation cache where it is, else computed (with
    `load(name)` -> (generator, tokenizer)) and cached; written to `path`."""
    from chatalign.evaluation.cache import ResultCache
    from chatalign.evaluation.runner import cache_dir_for
    from chatalign.runs import write_json_atomic

    cache, key = ResultCache(cache_dir_for(cfg.independent, run_path)), _cache_key(cfg)
    res = cache.get(CACHE_SUITE, key)
    if res is None:
        log.info("evaluating the base model %s", cfg.independent.base_model)
        generator, tok = load(str(cfg.independent.base_model))
        res = run_eval(cfg, generator, tok, groups=independent_groups(cfg))
        generator.close()
        cache.put(CACHE_SUITE, key, res)
    write_json_atomic(path, res)
    return res


def write_independent_file(cfg: GattConfig, run_path: Path, results: dict[str, dict], progress: bool) -> Path | None:
    """independent.json: the core suites (general by default) through `chatalign.evaluation`, and the gatt rows
    from the evaluation passes (`results`: label -> pass)."""
    from chatalign.evaluation.stage_hook import run_independent
    from chatalign.gatt.summary import independent_rows

    rows = independent_rows(results, cfg.independent.gatt.placements, base_is_start(cfg)) \
        if cfg.independent.gatt_on() else []
    return run_independent(cfg.independent, run_path, model=str(run_path / "model"), start_model=cfg.model.name,
                           default_suites=list(GATT_DEFAULT_SUITES), progress=progress, extra_rows=rows)
