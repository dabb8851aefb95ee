"""SFT's part of the pipeline report: the loss curve and the held-out checks, read from its run directory;
and what its step offers the example dialogues (the held-out prompts, the base model's and its answers)."""

from __future__ import annotations

from chatalign.pipeline.examples import ExampleSource, answers_in
from chatalign.pipeline.report_sections import Ctx, StepInfo, not_run, num, pct
from chatalign.plots import plot_curves


def section(ctx: Ctx) -> list:
    blocks: list = [("h", 2, "SFT")]
    done = ctx.done("sft")
    if not done:
        return blocks + not_run(ctx, "sft", "loss curve")
    s = done[0]
    m = s.metrics
    blocks.append(("p", f"Step `{s.name}`: {m.get('steps')} optimizer steps over {m.get('packed_rows')} packed rows "
                        f"of `{s.config.get('data', {}).get('train')}`; final loss {num(m.get('final_loss'))}."))
    png = plot_curves(s.records(), ["loss"], ctx.root / "report_sft_loss.png", f"SFT loss ({s.name})")
    if png:
        blocks.append(("img", png.name, "SFT loss"))
    if m.get("eval_pass_rate") is not None or m.get("eval_reference_nll") is not None:
        rows = []
        if "base_pass_rate" in m or "base_reference_nll" in m:
            rows.append({"model": "start (base)", "rule checks passed": pct(m.get("base_pass_rate")),
                         "reference NLL": num(m.get("base_reference_nll"))})
        rows.append({"model": "after SFT", "rule checks passed": pct(m.get("eval_pass_rate")),
                     "reference NLL": num(m.get("eval_reference_nll"))})
        blocks += [("p", "Held-out prompts: greedy answers checked by each prompt's rule; NLL of the reference "
                         "answers (lower is better)."), ("table", ["model", "rule checks passed", "reference NLL"], rows)]
    return blocks


def example_source(step: StepInfo) -> ExampleSource:
    cfg = step.config
    return ExampleSource(prompts=(cfg.get("data") or {}).get("eval"),
                         max_new_tokens=(cfg.get("eval") or {}).get("max_new_tokens"),
                         answers=answers_in(step, "eval_final.json"),
                         base_model=(cfg.get("model") or {}).get("name") or "embedded",
                         base_answers=answers_in(step, "eval_base.json"), model_settings=cfg.get("model") or {})
