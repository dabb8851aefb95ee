"""The RLHF stage as the registry sees it: `chatalign rlhf round|rs|ppo|eval|status`; in a pipeline a step is
one round. Light: its modules load when a method runs."""

from __future__ import annotations

import argparse

from chatalign.errors import UserError
from chatalign.stage import Stage, add_recipe_args, imported_on_call

# action: (help, the function of chatalign.rlhf.cli_commands that runs it)
ROUND_ACTIONS = {"round": ("one RLHF round: rejection sampling and/or PPO as the recipe's mode says", "cmd_round"),
                 "rs": ("only rejection sampling fine-tuning", "cmd_rs"), "ppo": ("only PPO", "cmd_ppo")}
EVAL_TEXT = ("the held-out comparison of a finished round again, e.g. on more prompts / samples: "
             "`chatalign rlhf eval runs/quickstart/rlhf_round1 data.max_heldout=60 "
             "eval.samples_per_prompt=8 eval.seed=1` (the round's own config from its manifest, run from "
             "the directory the round ran in), or `--config ROUND.yaml` with the round's overrides; "
             "writes <output_dir>/eval_<setting>/ (report.md, summary.json); the round is not changed")


class RLHFStage(Stage):
    name = "rlhf"
    help = "rejection sampling fine-tuning and PPO rounds with the two reward models (sec. 3.2.3)"
    title = "RLHF"
    order = 30
    depends_on = ("sft", "reward")
    start_key = "start"
    output_files = ("model/, report.md, metrics.jsonl (PPO), data/ (samples, selection), rs_sft/ (the RS "
                    "fine-tune: metrics.jsonl, checkpoints/), ppo/ (checkpoints/, best/), manifest.json")
    config_target = "chatalign.rlhf.config:RLHFRoundConfig"

    def add_commands(self, sub: argparse._SubParsersAction) -> None:
        p = sub.add_parser(self.name, help=self.help, description=self.help)
        p.set_defaults(handler=self.command)
        rsub = p.add_subparsers(dest="rlhf_command", metavar="ACTION")
        for action, (text, function) in ROUND_ACTIONS.items():
            ap = rsub.add_parser(action, help=text, description=text,
                                 epilog=f"writes into output_dir: {self.output_files}")
            add_recipe_args(ap, self.config_class)
            ap.set_defaults(handler=self.round_command, round_function=function)
        ep = rsub.add_parser("eval", help="re-run a finished round's held-out comparison with other settings",
                             description=EVAL_TEXT)
        ep.add_argument("run", nargs="?", default=None, metavar="RUN",
                        help="the round's run directory (its manifest holds the config)")
        ep.add_argument("--config", "-c", default=None, help="instead of RUN: the recipe the round ran with")
        ep.add_argument("overrides", nargs="*", metavar="key.sub=value",
                        help="eval.* / data.max_heldout to change (with --config: the round's overrides too)")
        ep.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
        ep.set_defaults(handler=self.eval_command)
        st = rsub.add_parser("status", help="the chain of rounds in a runs folder with headline metrics")
        st.add_argument("path", help="a runs folder or a round's run directory")
        st.set_defaults(handler=self.status_command)

    def command(self, args: argparse.Namespace) -> int:
        """`chatalign rlhf` with no action."""
        raise UserError("usage: chatalign rlhf {round,rs,ppo,eval,status} ... (see chatalign rlhf --help)")

    def round_command(self, args: argparse.Namespace) -> int:
        from chatalign.rlhf import cli_commands

        return getattr(cli_commands, args.round_function)(args.config, args.overrides, dry_run=args.dry_run,
                                                          resume=args.resume, progress=not args.no_progress)

    def eval_command(self, args: argparse.Namespace) -> int:
        from chatalign.rlhf.cli_commands import cmd_eval

        run, overrides = args.run, list(args.overrides)
        if run is not None and "=" in run:  # `--config C key=value`: argparse took the first override as RUN
            run, overrides = None, [run, *overrides]
        if (run is None) == (args.config is None):
            raise UserError("chatalign rlhf eval: give the round's run directory or --config RECIPE (one of them)")
        return cmd_eval(args.config, overrides, run_dir=run, progress=not args.no_progress)

    def status_command(self, args: argparse.Namespace) -> int:
        from chatalign.rlhf.cli_commands import cmd_status

        return cmd_status(args.path)

    def describe_run(self, manifest: dict) -> str:
        info = manifest.get("rlhf") or {}
        return f"rlhf round {info['round']} ({info.get('mode')})" if info.get("round") else "rlhf"

    run = imported_on_call("chatalign.rlhf.round:run_round")
    dry_run = imported_on_call("chatalign.rlhf.round:plan")
    report_section = imported_on_call("chatalign.rlhf.pipeline_section:section")
    plan_spec = imported_on_call("chatalign.rlhf.plan_spec:plan_spec")
    plan_changes = imported_on_call("chatalign.rlhf.plan_spec:plan_changes")


STAGE = RLHFStage()
