"""The safety context distillation stage as the registry sees it (`chatalign safety`, `chatalign eval safety`);
light: its modules load when a method runs."""

from __future__ import annotations

import argparse

from chatalign.stage import Stage, imported_on_call


class SafetyStage(Stage):
    name = "safety"
    help = "safety context distillation (sec. 4.2.4)"
    title = "safety"
    order = 50
    depends_on = ("sft", "reward", "rlhf")
    output_files = ("report.md, safety_eval.png, distill_gains.png, data/ (distillation candidates), train/ (the "
                    "SFT run: metrics.jsonl, checkpoints/), model/, manifest.json")
    config_target = "chatalign.safety.config:SafetyConfig"

    def add_eval_command(self, esub: argparse._SubParsersAction) -> None:
        es = esub.add_parser("safety", help="violation rate on adversarial prompts, false refusals on "
                                            "helpful/borderline")
        es.add_argument("--model", required=True, help="run directory, HF model dir or `embedded`")
        es.add_argument("--safety-rm", default=None, help="safety reward run directory (judge)")
        es.add_argument("--data-dir", default=None, help="folder with the eval files (default: bundled)")
        es.add_argument("--out", default=None, help="folder for eval_safety.{json,md,png} (default: the run directory, when --model is one)")
        es.set_defaults(handler=self.eval_command)

    def eval_command(self, args: argparse.Namespace) -> int:
        from chatalign.safety.cli_commands import cmd_eval

        return cmd_eval(args.model, args.safety_rm, args.out, args.data_dir)

    run = imported_on_call("chatalign.safety.run:run_safety")
    dry_run = imported_on_call("chatalign.safety.run:prepare")
    report_section = imported_on_call("chatalign.safety.pipeline_section:section")
    example_source = imported_on_call("chatalign.safety.pipeline_section:example_source")
    plan_spec = imported_on_call("chatalign.safety.plan_spec:plan_spec")
    plan_changes = imported_on_call("chatalign.safety.plan_spec:plan_changes")


STAGE = SafetyStage()
