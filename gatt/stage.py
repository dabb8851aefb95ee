"""The Ghost Attention stage as the registry sees it (`chatalign gatt`, `chatalign eval gatt`); light: its
modules load when a method runs."""

from __future__ import annotations

import argparse

from chatalign.stage import Stage, imported_on_call


class GattStage(Stage):
    name = "gatt"
    help = "Ghost Attention: multi-turn data that keeps a system instruction alive (sec. 3.3)"
    title = "GAtt"
    order = 40
    depends_on = ("sft", "reward", "rlhf")
    output_files = ("report.md, adherence.png, data/ (synthesized dialogues), train/ (the SFT run: metrics.jsonl, "
                    "checkpoints/), model/, manifest.json")
    config_target = "chatalign.gatt.config:GattConfig"

    def add_eval_command(self, esub: argparse._SubParsersAction) -> None:
        eg = esub.add_parser("gatt", help="instruction adherence at turns 2/4/6/20 (paper Table 30)")
        eg.add_argument("--model", required=True, help="run directory, HF model dir or `embedded`")
        eg.add_argument("--data", default=None, help="dialogues {id, user_turns} (default: bundled held-out)")
        eg.add_argument("--out", default=None, help="folder for eval_gatt.{json,md,png} (default: the run directory, when --model is one)")
        eg.add_argument("--turns", type=int, default=20, help="dialogue length in user turns (default 20)")
        eg.add_argument("--dialogues", type=int, default=12, help="dialogues to evaluate (default 12)")
        eg.set_defaults(handler=self.eval_command)

    def eval_command(self, args: argparse.Namespace) -> int:
        from chatalign.gatt.cli_commands import cmd_eval

        return cmd_eval(args.model, args.data, args.out, args.turns, args.dialogues)

    run = imported_on_call("chatalign.gatt.run:run_gatt")
    dry_run = imported_on_call("chatalign.gatt.run:prepare")
    report_section = imported_on_call("chatalign.gatt.pipeline_section:section")
    plan_spec = imported_on_call("chatalign.gatt.plan_spec:plan_spec")
    plan_changes = imported_on_call("chatalign.gatt.plan_spec:plan_changes")


STAGE = GattStage()
