"""The DPO stage as the registry sees it: `chatalign dpo --config recipes/quickstart/dpo.yaml`.

Light on purpose (no torch at import): `chatalign --help` builds every stage object to list the commands.
"""

from __future__ import annotations

from typing import Any

from chatalign.stage import Stage


class DPOStage(Stage):
    name = "dpo"
    help = "Direct Preference Optimization from preference pairs, no reward model (Rafailov et al. 2023)"
    order = 25  # after the reward models, before the RLHF rounds: it reads the same pairs as the RMs
    depends_on = ("sft", "reward")
    title = "DPO"
    config_target = "chatalign.dpo.config:DPOConfig"

    def run(self, cfg: Any, resume: bool = False, progress: bool = True) -> dict:
        from chatalign.dpo.run import run_dpo

        return run_dpo(cfg, resume=resume, progress=progress)

    def dry_run(self, cfg: Any) -> dict:
        from chatalign.dpo.data import prepare

        return prepare(cfg).stats

    def report_section(self, ctx: Any) -> list:
        from chatalign.dpo.pipeline_section import dpo_section

        return dpo_section(ctx)

    def plan_spec(self, cfg: Any, shape_of, prompt_tokens: int) -> Any:
        from chatalign.dpo.plan import plan_spec

        return plan_spec(cfg, shape_of)

    def plan_changes(self, cfg: Any) -> list[str]:
        from chatalign.dpo.plan import plan_changes

        return plan_changes(cfg)


STAGE = DPOStage()
