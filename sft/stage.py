"""The SFT stage as the registry sees it (`chatalign sft`); light: its modules load when a method runs."""

from __future__ import annotations

from chatalign.stage import Stage


class SFTStage(Stage):
    name = "sft"
    help = "prompt-masked, packed supervised fine-tuning (Llama 2 sec. 3.1)"
    title = "SFT"
    order = 10

    def config_class(self) -> type:
        from chatalign.sft.config import SFTConfig

        return SFTConfig

    def run(self, cfg, resume: bool = False, progress: bool = True) -> dict:
        from chatalign.sft.run import run_sft

        return run_sft(cfg, resume=resume, progress=progress)

    def dry_run(self, cfg) -> dict:
        from chatalign.sft.run import prepare

        return prepare(cfg)[1].stats

    def report_section(self, ctx) -> list:
        from chatalign.sft.pipeline_section import section

        return section(ctx)

    def example_source(self, step):
        from chatalign.sft.pipeline_section import example_source

        return example_source(step)

    def plan_spec(self, cfg, shape_of, prompt_tokens: int):
        from chatalign.sft.plan_spec import plan_spec

        return plan_spec(cfg, shape_of, prompt_tokens)

    def plan_changes(self, cfg) -> list[str]:
        from chatalign.sft.plan_spec import plan_changes

        return plan_changes(cfg)


STAGE = SFTStage()
