"""The reward-model stage as the registry sees it (`chatalign reward`, `chatalign eval reward`); light: its
modules load when a method runs."""

from __future__ import annotations

import argparse

from chatalign.stage import Stage, imported_on_call


class RewardStage(Stage):
    name = "reward"
    help = "train a helpfulness or safety reward model from preference pairs (sec. 3.2.2)"
    order = 20
    depends_on = ("sft",)
    makes_chat_model = False
    config_target = "chatalign.reward.config:RewardConfig"

    def dry_run(self, cfg) -> dict:
        from chatalign.reward.run import prepare

        return prepare(cfg).stats

    def add_eval_command(self, esub: argparse._SubParsersAction) -> None:
        er = esub.add_parser("reward", help="held-out accuracy per preference strength, source and safety bin")
        er.add_argument("--model", required=True, help="reward run directory or HF sequence-classification dir")
        er.add_argument("--data", required=True, nargs="+", help="preference file(s), any supported format")
        er.add_argument("--out", default=None, help="where to write report.md and PNGs (default: the run dir)")
        er.set_defaults(handler=self.eval_command)

    def eval_command(self, args: argparse.Namespace) -> int:
        from chatalign.reward.cli_commands import cmd_eval

        return cmd_eval(args.model, args.data, args.out)

    def describe_run(self, manifest: dict) -> str:
        return f"reward ({(manifest.get('config') or {}).get('kind', '?')})"

    run = imported_on_call("chatalign.reward.run:run_reward")
    report_section = imported_on_call("chatalign.reward.pipeline_section:section")
    plan_spec = imported_on_call("chatalign.reward.plan_spec:plan_spec")
    plan_changes = imported_on_call("chatalign.reward.plan_spec:plan_changes")


STAGE = RewardStage()
