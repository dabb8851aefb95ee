"""The safety context distillation stage as the registry sees it (`chatalign safety`, `chatalign eval safety`);
light: its modules load when a method runs."""

from __future__ import annotations

import argparse

from chatalign.stage import Stage


class SafetyStage(Stage):
    name = "safety"
    help = "safety context distillation (sec. 4.2.4)"
    title = "safety"
    order = 50
    depends_on = ("sft", "reward", "rlhf")
    output_files = "report.md, safety_eval.png, distill_gains.png, data/, train/, model/, manifest.json"

    def config_class(self) -> type:
        from chatalign.safety.config import SafetyConfig

        return SafetyConfig

    def run(self, cfg, resume: bool = False, progress: bool = True) -> dict:
        from chatalign.safety.run import run_safety

        return run_safety(cfg, resume=resume, progress=progress)

    def dry_run(self, cfg) -> dict:
        from chatalign.safety.run import prepare

        return prepare(cfg)

    def add_eval_command(self, esub: argparse._SubParsersAction) -> None:
        es = esub.add_parser("safety", help="violation rate on adversarial prompts, false refusals on "
                                            "helpful/borderline")
        es.add_argument("--model", required=True)
        es.add_argument("--safety-rm", default=None, help="safety reward run directory (judge)")
        es.add_argument("--data-dir", default=None, help="folder with the eval files (default: bundled)")
        es.add_argument("--out", default=None)
        es.set_defaults(handler=self.eval_command)

    def eval_command(self, args: argparse.Namespace) -> int:
        from chatalign.safety.cli_commands import cmd_eval

        return cmd_eval(args.model, args.safety_rm, args.out, args.data_dir)

    def report_section(self, ctx) -> list:
        from chatalign.safety.pipeline_section import section

        return section(ctx)

    def example_source(self, step):
        from chatalign.safety.pipeline_section import example_source

        return example_source(step)

    def plan_spec(self, cfg, shape_of, prompt_tokens: int):
        from chatalign.safety.plan_spec import plan_spec

        return plan_spec(cfg, shape_of, prompt_tokens)

    def plan_changes(self, cfg) -> list[str]:
        from chatalign.safety.plan_spec import plan_changes

        return plan_changes(cfg)


STAGE = SafetyStage()
