"""What the core knows of a stage: one `Stage` object per stage folder, found through the registry.

Each stage folder (sft/, reward/, rlhf/, ...) has a light `stage.py` that builds one subclass instance of
`Stage` and names it in pyproject's `[project.entry-points."chatalign.stages"]`. The CLI, the pipeline, its
report and the memory planner iterate `chatalign.registry.stages()`; no module of the core names a stage.
`stage.py` must import nothing heavy at module level (no torch, transformers): `chatalign --help` loads every
stage object to list the commands.
"""

from __future__ import annotations

import argparse
from typing import Any


class Stage:
    """A stage of the pipeline. Subclasses set the class attributes and implement `run` and `dry_run`."""

    name: str = ""  # the CLI command and the `stage:` value of its recipes
    help: str = ""  # one line for `chatalign --help`
    order: int = 100  # position in the report and in `chatalign --help` (pipeline order)
    depends_on: tuple[str, ...] = ()  # stages this one may import (checked by tests/test_layers.py)
    # config keys (dotted) that name run directories, models or outputs: not resolved against the recipe,
    # but checked like paths (no `~`, `$VAR`, templates)
    link_keys: tuple[str, ...] = ("output_dir",)
    # `chatalign pipeline` runs this stage as a step (False for helpers such as an eval-only stage)
    pipeline_step: bool = True

    # -- config -------------------------------------------------------------------------------------------
    def config_class(self) -> type:
        """The pydantic config class of this stage's recipes (imported on call, not at module load)."""
        raise NotImplementedError

    # -- command line -------------------------------------------------------------------------------------
    def add_commands(self, sub: argparse._SubParsersAction) -> None:
        """Add `chatalign <name> ...` to the CLI: by default --config, overrides, --dry-run, --resume."""
        p = sub.add_parser(self.name, help=self.help, description=self.help)
        add_recipe_args(p)
        p.set_defaults(handler=self.command)

    def add_eval_command(self, esub: argparse._SubParsersAction) -> None:
        """Add `chatalign eval <name> ...`, for stages that have a stand-alone evaluation."""

    def command(self, args: argparse.Namespace) -> int:
        """Run `chatalign <name> --config ...` (the default command `add_commands` adds)."""
        from chatalign.cli.stage_output import print_dry_run, print_run_summary
        from chatalign.config import load_config

        cfg = load_config(self.config_class(), args.config, args.overrides)
        if args.dry_run:
            return print_dry_run(cfg, lambda: self.dry_run(cfg))
        summary = self.run(cfg, resume=args.resume, progress=not args.no_progress)
        print_run_summary(cfg.output_dir, summary, self.output_files)
        return 0

    output_files: str = "model/, report.md, metrics.jsonl, manifest.json"

    # -- running ------------------------------------------------------------------------------------------
    def run(self, cfg: Any, resume: bool = False, progress: bool = True) -> dict:
        """Run the stage on a validated config; returns the run's summary (the manifest's metrics)."""
        raise NotImplementedError

    def dry_run(self, cfg: Any) -> dict:
        """Check the data a run would read (raise a UserError naming file:line: field); return its statistics."""
        raise NotImplementedError

    # -- pipeline report ----------------------------------------------------------------------------------
    def report_section(self, ctx: Any) -> list:
        """Blocks of the pipeline report for this stage's steps (`chatalign.pipeline.report_sections.Ctx`):
        ("h", level, text) | ("p", text) | ("table", columns, rows) | ("img", file, alt) | ("list", items)."""
        return []

    # -- memory plan ----------------------------------------------------------------------------------------
    def plan_spec(self, cfg: Any, shape_of, prompt_tokens: int) -> Any:
        """The `chatalign.plan.phases.StageSpec` of a recipe (None: `chatalign plan` does not plan it)."""
        return None

    def plan_changes(self, cfg: Any) -> list[str]:
        """Single recipe changes worth trying when the plan does not fit (each a space-separated override list)."""
        return []


def add_recipe_args(p: argparse.ArgumentParser) -> None:
    """The arguments of every recipe-driven command."""
    p.add_argument("--config", "-c", required=True, help="recipe YAML (see recipes/)")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="override recipe keys")
    p.add_argument("--dry-run", action="store_true", help="validate config and data, print them, exit 0")
    p.add_argument("--resume", action="store_true", help="continue the run in output_dir from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
