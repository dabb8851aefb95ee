"""The preference batches' part of the pipeline report: per batch, each reward model's accuracy on its held-out
pairs before retraining (the RM in use when the batch was drawn) and after (the RM retrained with the batch),
the figure the paper watched round after round (sec. 3.2.1)."""

from __future__ import annotations

from pathlib import Path

from chatalign.pipeline.report_sections import Ctx, StepInfo, not_run, pct


def retrained_on(ctx: Ctx, batch: StepInfo) -> list[tuple[StepInfo, dict]]:
    """Finished reward steps evaluated on this batch's held-out file: (step, its per-file result there)."""
    heldout = (batch.dir / "preferences_heldout.jsonl").resolve()
    out = []
    for rm in ctx.done("reward"):
        for entry in (rm.config.get("data") or {}).get("eval") or []:
            if Path(entry.get("path", "")).resolve() == heldout:
                result = ((rm.json("eval.json") or {}).get("per_file") or {}).get(entry.get("name"))
                if result:
                    out.append((rm, result))
    return out


def kind_of(rm: StepInfo) -> str:
    """The batch's key for a reward step: labels.json says "helpful" where the reward stage says "helpfulness"."""
    from chatalign.reward.pipeline_section import rm_kind

    return "safety" if rm_kind(rm) == "safety" else "helpful"


def section(ctx: Ctx) -> list:
    steps = [s for s in ctx.of("prefs") if s.enabled]
    if not steps:
        return []  # the loop is off: nothing to say
    blocks: list = [("h", 2, "Preference batches: reward models before and after retraining")]
    done = ctx.done("prefs")
    if not done:
        return blocks + not_run(ctx, "prefs", "preference batch")
    rows = []
    for batch in done:
        labels = batch.json("labels.json") or {}
        before = labels.get("rm_accuracy_before") or {}
        after = {kind_of(rm): (rm, result) for rm, result in retrained_on(ctx, batch)}
        for kind in ("helpful", "safety"):
            b, a = before.get(kind), after.get(kind)
            if b is None and a is None:
                continue
            rows.append({"batch": batch.name, "RM": kind, "held-out pairs": labels.get("heldout_pairs"),
                         "before (RM in use)": pct(b["accuracy"]) if b else "-",
                         "after (retrained)": f"{pct(a[1]['accuracy'])} ({a[0].name})" if a else "-"})
        why = ", ".join(f"{k} {v}" for k, v in (labels.get("unlabelled") or {}).items()) or "none"
        blocks.append(("p", f"`{batch.name}`: {labels.get('comparisons', 0)} comparisons, {labels.get('labelled', 0)}"
                            f" labelled by {labels.get('annotator', '?')}; no label: {why}."))
    if rows:
        blocks.append(("table", ["batch", "RM", "held-out pairs", "before (RM in use)", "after (retrained)"], rows))
    return blocks
