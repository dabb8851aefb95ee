"""`chatalign rlhf eval`: the held-out comparison of a finished round again, with other evaluation settings.

A round's report compares its model with the previous one and the SFT model on the recipe's held-out prompts.
A small comparison cannot separate a real gain from noise, so this re-runs it (more prompts, more samples per
prompt, another seed) without touching the round: answers, scores and a report go to
`<output_dir>/eval_<setting>/`, e.g. `eval_n60_k8_T1.0_seed1/` (answers are cached there, so a second call
with the same settings only re-reads them). The config is the round's own (from its manifest) or the recipe
it ran with, plus overrides.
"""

from __future__ import annotations

import logging
from pathlib import Path

from chatalign.errors import RunError
from chatalign.rlhf.config import RLHFRoundConfig

log = logging.getLogger(__name__)


def setting_tag(n_prompts: int, ev) -> str:
    """Directory name of one evaluation setting, e.g. eval_n60_k8_T1.0_seed1 (greedy: eval_n60_greedy)."""
    if ev.temperature == 0:
        return f"eval_n{n_prompts}_greedy"
    return f"eval_n{n_prompts}_k{ev.samples_per_prompt}_T{ev.temperature}_seed{ev.seed}"


def config_of_round(run_dir: str, overrides) -> RLHFRoundConfig:
    """The config a round ran with (its manifest), `key=value` overrides applied; output_dir is `run_dir`."""
    from chatalign.config import apply_overrides, validate
    from chatalign.runs import RunDir

    manifest = RunDir(run_dir, "rlhf").read_manifest()
    if not manifest or manifest.get("stage") != "rlhf" or not isinstance(manifest.get("config"), dict):
        raise RunError(f"{run_dir}: not an RLHF round's run directory (no manifest.json of stage rlhf)")
    data = apply_overrides({**manifest["config"], "output_dir": str(run_dir)}, list(overrides))
    return validate(RLHFRoundConfig, data, f"{run_dir}/manifest.json config")


def reevaluate_round(cfg: RLHFRoundConfig, progress: bool = True, reward_fn=None) -> tuple[dict, Path]:
    """Evaluate the finished round in `cfg.output_dir` with `cfg.eval` / `cfg.data.max_heldout`; return the
    summary and the directory holding it (summary.json, report.md, answers_*.jsonl)."""
    from chatalign.models import resolve_model_path
    from chatalign.rlhf.evaluate.heldout import evaluate_round
    from chatalign.rlhf.report import heldout_section
    from chatalign.rlhf.reward_fn import load_reward_fn
    from chatalign.rlhf.round import prepare_context, sft_link_of
    from chatalign.runs import RunDir, write_json_atomic, write_text_atomic

    run = RunDir(cfg.output_dir, "rlhf")
    manifest = run.read_manifest() or {}
    if manifest.get("status") != "finished":
        raise RunError(f"{run.path}: no finished RLHF round there (output_dir); run `chatalign rlhf round` with "
                       "this recipe first")
    if not cfg.data.heldout:
        raise RunError("data.heldout is not set: the evaluation needs held-out prompts")
    ctx = prepare_context(cfg, run, progress, reward_fn)
    recorded = manifest.get("rlhf", {})
    if recorded.get("start") and recorded["start"] != ctx.start:
        raise RunError(f"{run.path} started from {recorded['start']}, the recipe says start={ctx.start}: "
                       "evaluate with the recipe (and overrides) the round ran with")
    sft_model = resolve_model_path(sft_link_of(cfg, ctx.start).path) if cfg.eval.compare_sft else None
    out_dir = run.path / setting_tag(len(ctx.heldout), cfg.eval)
    out_dir.mkdir(parents=True, exist_ok=True)
    if ctx.reward_fn is None:
        ctx.reward_fn = load_reward_fn(cfg)
    log.info("evaluating %s on %d held-out prompts into %s", run.model_dir, len(ctx.heldout), out_dir)
    summary = evaluate_round(ctx, str(run.model_dir), ctx.start_model, sft_model, out_dir=out_dir)
    setting = {"heldout_prompts": len(ctx.heldout), "temperature": cfg.eval.temperature,
               "samples_per_prompt": cfg.eval.samples_per_prompt, "seed": cfg.eval.seed,
               "max_new_tokens": cfg.eval_max_new_tokens}
    write_json_atomic(out_dir / "summary.json", {"setting": setting, **summary})
    lines = [f"# RLHF round {ctx.round}: held-out evaluation again", "",
             f"Round `{run.path}` (model `{run.model_dir}`), started from `{ctx.start}`.", "",
             *heldout_section(summary, cfg.eval, len(ctx.heldout))]
    write_text_atomic(out_dir / "report.md", "\n".join(lines) + "\n")
    return summary, out_dir
