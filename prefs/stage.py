"""The preference-batch stage as the registry sees it: `chatalign prefs --config recipes/quickstart/prefs.yaml`.
Light on purpose (no torch at import)."""

from __future__ import annotations

from typing import Any

from chatalign.stage import Stage, imported_on_call


class PrefsStage(Stage):
    name = "prefs"
    help = "fresh comparisons from the latest model(s), labelled by rules, an LLM judge or people (sec. 3.2.1)"
    title = "preferences"
    order = 35  # after the round it samples from; its labels feed the next reward models
    depends_on = ("reward",)  # the current reward models score the batch's held-out pairs
    makes_chat_model = False
    output_files = "comparisons.jsonl, preferences.jsonl, labels.json, report.md, manifest.json"
    config_target = "chatalign.prefs.config:PrefsConfig"
    plan_spec = imported_on_call("chatalign.prefs.plan_spec:plan_spec")
    plan_changes = imported_on_call("chatalign.prefs.plan_spec:plan_changes")

    def run(self, cfg: Any, resume: bool = False, progress: bool = True) -> dict:
        from chatalign.prefs.run import run_prefs

        return run_prefs(cfg, resume=resume, progress=progress)

    def dry_run(self, cfg: Any) -> dict:
        from chatalign.prefs.run import prepare

        return prepare(cfg)

    def report_section(self, ctx: Any) -> list:
        from chatalign.prefs.pipeline_section import section

        return section(ctx)

    def describe_run(self, manifest: dict) -> str:
        kind = ((manifest.get("config") or {}).get("annotator") or {}).get("kind", "?")
        return f"prefs ({kind})"


STAGE = PrefsStage()
