"""The SFT stage as the registry sees it (`chatalign sft`); light: its modules load when a method runs."""

from __future__ import annotations

from chatalign.stage import Stage, imported_on_call


class SFTStage(Stage):
    name = "sft"
    help = "prompt-masked, packed supervised fine-tuning (Llama 2 sec. 3.1)"
    title = "SFT"
    order = 10
    config_target = "chatalign.sft.config:SFTConfig"

    def dry_run(self, cfg) -> dict:
        from chatalign.sft.run import prepare

        return prepare(cfg)[1].stats

    run = imported_on_call("chatalign.sft.run:run_sft")
    report_section = imported_on_call("chatalign.sft.pipeline_section:section")
    example_source = imported_on_call("chatalign.sft.pipeline_section:example_source")
    plan_spec = imported_on_call("chatalign.sft.plan_spec:plan_spec")
    plan_changes = imported_on_call("chatalign.sft.plan_spec:plan_changes")


STAGE = SFTStage()
