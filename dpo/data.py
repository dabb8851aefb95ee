"""Everything before the model (what --dry-run checks): the RM's preference files read and checked with the
RM's own reader (bad rows: file:line: field, or quarantine), the mix drawn, pairs encoded and planned."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chatalign.dpo.config import DPOConfig

log = logging.getLogger(__name__)
INDEPENDENT_SUITES = ["general"]  # what `independent:` evaluates by default


@dataclass
class Prepared:
    tokenizer: object
    pairs: list  # DPOPair, the training mix
    rows: list  # PairRow of the plan
    plan: list  # row indices per optimizer step
    stats: dict
    eval_sets: dict  # held-out name -> DPOPairs (their `source` is the record's source, else the file's name)
    eval_excluded: dict  # held-out name -> pairs left out for chosen unsafe / rejected safe


def load_eval_sets(cfg: DPOConfig, tok, per_source: dict) -> tuple[dict, dict, int]:
    """Held-out pairs per file, encoded (checked now, not after an hour of training); pairs too long."""
    from chatalign.dpo.pairs import encode_dpo_pairs
    from chatalign.reward.run import load_source

    sets, excluded, too_long = {}, {}, 0
    for src in cfg.data.eval:
        prefs, stats = load_source(cfg, src, "eval")
        per_source[f"eval:{src.label}"] = stats
        prefs = prefs[:cfg.eval.max_pairs] if cfg.eval.max_pairs else prefs
        pairs, enc = encode_dpo_pairs(tok, prefs, [p.source or src.label for p in prefs], cfg.train.max_seq_len)
        sets[src.label] = pairs
        excluded[src.label] = stats["excluded_chosen_unsafe_rejected_safe"]
        too_long += enc["too_long"]
    return sets, excluded, too_long


def prepare(cfg: DPOConfig) -> Prepared:
    from chatalign.dpo.pairs import encode_dpo_pairs
    from chatalign.models import load_tokenizer
    from chatalign.reward.pairs import plan_rows
    from chatalign.reward.run import load_mix
    from chatalign.text.templates import apply_named_template

    prefs, sources, per_source = load_mix(cfg)
    tok = load_tokenizer(cfg.model.name, cfg.model.trust_remote_code)
    apply_named_template(tok, cfg.model.chat_template)
    eval_sets, eval_excluded, eval_too_long = load_eval_sets(cfg, tok, per_source)
    pairs, enc_stats = encode_dpo_pairs(tok, prefs, sources, cfg.train.max_seq_len)
    if enc_stats["too_long"] or eval_too_long:
        log.warning("%d training and %d held-out pairs left out: a side is longer than train.max_seq_len=%d even "
                    "with only its last round", enc_stats["too_long"], eval_too_long, cfg.train.max_seq_len)
    rows, plan = plan_rows(pairs, cfg.train.global_batch_pairs, cfg.train.row_tokens, cfg.train.epochs,
                           cfg.train.seed)
    if cfg.train.max_steps:
        plan = plan[:cfg.train.max_steps]
    stats = {"sources": per_source, "mix_total": len(prefs), **enc_stats, "steps": len(plan),
             "packed_rows": sum(len(s) for s in plan), "pairs_per_step": cfg.train.global_batch_pairs,
             "eval_pairs": {k: len(v) for k, v in eval_sets.items()}, "eval_too_long": eval_too_long}
    from chatalign.evaluation.stage_hook import check_data

    if cfg.independent.enabled:
        stats["independent"] = check_data(cfg.independent, INDEPENDENT_SUITES)
    return Prepared(tok, pairs, rows, plan, stats, eval_sets, eval_excluded)
