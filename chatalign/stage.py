"""What the core knows of a stage: one `Stage` object per stage folder, found through the registry.

Each stage folder (sft/, reward/, rlhf/, ...) has a light `stage.py` that builds one instance of a `Stage`
subclass, `STAGE`, named in pyproject's `[project.entry-points."chatalign.stages"]`. The CLI, the pipeline, its
report and the memory planner iterate `chatalign.registry.stages()`; no module of the core names a stage.
`stage.py` must import nothing heavy at module level (no torch, transformers): `chatalign --help` loads every
stage object to list the commands. Its methods import the stage's modules when called; a method that is just
a function of one of them is declared `run = imported_on_call("chatalign.sft.run:run_sft")`.

Paths in a stage's config are declared by their type (`chatalign.config.RecipePath`, `ModelRef`, `RunPath`),
so `load_config` resolves and checks them; the stage has nothing to list.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any


class Stage:
    """A stage of the pipeline. Subclasses set the class attributes (`config_target` among them) and implement
    `run` and `dry_run`; the rest has defaults."""

    name: str = ""  # the CLI command and the `stage:` value of its recipes
    help: str = ""  # one line for `chatalign --help`
    title: str = ""  # how reports name what it makes (the column of its model in the example dialogues)
    order: int = 100  # position in `chatalign --help` and in the pipeline report (pipeline order)
    depends_on: tuple[str, ...] = ()  # stages this one may import (tests/test_layers.py checks it)
    makes_chat_model: bool = True  # its run directory holds a chat model (a reward model is not one)
    start_key: str = "model.name"  # the dotted config key naming the model a recipe starts from
    output_files: str = "model/, report.md, metrics.jsonl, checkpoints/, manifest.json"  # a finished run directory
    config_target: str = ""  # "package.module:Class", the pydantic config of its recipes

    # -- config -------------------------------------------------------------------------------------------
    def config_class(self) -> type:
        """The pydantic config class of this stage's recipes: `config_target`, imported on call (not at module
        load)."""
        if not self.config_target:
            raise NotImplementedError(f"stage {self.name!r}: set config_target or override config_class")
        return imported(self.config_target)

    # -- command line -------------------------------------------------------------------------------------
    def add_commands(self, sub: argparse._SubParsersAction) -> None:
        """Add `chatalign <name> ...` to the CLI: by default --config, overrides, --dry-run, --resume."""
        p = sub.add_parser(self.name, help=self.help, description=self.help,
                           epilog=f"writes into output_dir: {self.output_files}")
        add_recipe_args(p, self.config_class)
        p.set_defaults(handler=self.command)

    def add_eval_command(self, esub: argparse._SubParsersAction) -> None:
        """Add `chatalign eval <name> ...` (set `handler` on it), for stages that have a stand-alone evaluation."""

    def command(self, args: argparse.Namespace) -> int:
        """Run `chatalign <name> --config ...` (the default command `add_commands` adds)."""
        from chatalign.cli.stage_output import print_dry_run
        from chatalign.config import load_config
        from chatalign.training.distributed import leave_process_group

        cfg = load_config(self.config_class(), args.config, args.overrides)
        self.check_models(cfg)
        if args.dry_run:
            return print_dry_run(cfg, lambda: self.dry_run(cfg))
        summary = self.run(cfg, resume=args.resume, progress=not args.no_progress)
        leave_process_group()
        self.print_summary(cfg, summary)
        return 0

    # -- running ------------------------------------------------------------------------------------------
    def check_models(self, cfg: Any) -> None:
        """Every model the config names (its ModelRef keys and `start_key`) exists here or is a Hub id: a
        mistyped run directory fails at once, offline, naming its key (not after the Hub's retries)."""
        from chatalign.config import model_refs
        from chatalign.embedded import is_embedded
        from chatalign.models import resolve_model_path

        start = cfg
        for part in self.start_key.split("."):
            start = getattr(start, part, None)  # a plugin stage may start from no model
        for key, name in {**model_refs(cfg), self.start_key: start}.items():
            if name is not None and not is_embedded(str(name)):  # the embedded model is built on first use
                resolve_model_path(name, key=key)

    def run(self, cfg: Any, resume: bool = False, progress: bool = True) -> dict:
        """Run the stage on a validated config; return the run's summary (the manifest's metrics). Raises a
        UserError (exit code on it) for what the user can fix, and on an interrupt (exit code 130)."""
        raise NotImplementedError

    def dry_run(self, cfg: Any) -> dict:
        """Check the data a run would read (raise a UserError naming file:line: field); return its statistics."""
        raise NotImplementedError

    def print_summary(self, cfg: Any, summary: dict) -> None:
        """What `chatalign <name>` and a pipeline step print when a run finishes."""
        from chatalign.cli.stage_output import print_run_summary

        print_run_summary(cfg.output_dir, summary, self.output_files)

    # -- pipeline report ----------------------------------------------------------------------------------
    def describe_run(self, manifest: dict) -> str:
        """How the lineage names a run directory of this stage, from its manifest (e.g. `reward (safety)`)."""
        return self.name

    def report_section(self, ctx: Any) -> list:
        """Blocks of the pipeline report for this stage's steps (ctx: `chatalign.pipeline.report_sections.Ctx`):
        ("h", level, text) | ("p", text) | ("table", columns, rows) | ("img", file, alt) | ("list", items)."""
        return []

    def example_source(self, step: Any) -> Any:
        """What a finished step offers the report's example dialogues (`chatalign.pipeline.examples.
        ExampleSource`: held-out prompts, answers already in its evaluation files), or None."""
        return None

    # -- memory plan ----------------------------------------------------------------------------------------
    def plan_spec(self, cfg: Any, shape_of, prompt_tokens: int) -> Any:
        """The `chatalign.plan.phases.StageSpec` of a recipe; `shape_of(model name)` gives a model's shape.
        None: `chatalign plan` does not plan this stage."""
        return None

    def plan_changes(self, cfg: Any) -> list[str]:
        """Single recipe changes worth trying when the plan does not fit (each a space-separated override list)."""
        return []


class imported_on_call:  # noqa: N801 (used like a function in a class body)
    """A stage method implemented by a function of one of its modules, `"package.module:function"`, imported
    when first called (so stage.py stays light); the function takes the method's arguments, without the stage:
        run = imported_on_call("chatalign.sft.run:run_sft")
    """

    def __init__(self, target: str):
        self.target = target

    def __get__(self, stage: Stage | None, owner: type | None = None):
        return self if stage is None else imported(self.target)


def imported(target: str) -> Any:
    """The object `"package.module:name"` names, its module imported now."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


# what shell completion offers for a recipe (shtab reads an argument's `complete`): YAML files and folders
RECIPE_FILES = {"bash": "_shtab_compgen_files", "zsh": "_files -g '*.y(a|)ml'", "tcsh": "f:*.{yaml,yml}"}


class ShowKeys(argparse.Action):
    """`--show-keys`: print every recipe key (type, default, description) and exit, like --version."""

    def __init__(self, option_strings, dest, config_class: Callable[[], type], **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="list every recipe key with its type, default and description, and exit")
        self.config_class = config_class

    def __call__(self, parser, namespace, values, option_string=None):
        from chatalign.config_keys import show_keys

        print(show_keys(self.config_class()))
        parser.exit()


def add_recipe_args(p: argparse.ArgumentParser, config_class: Callable[[], type] | None = None) -> None:
    """The arguments of every recipe-driven command (`--show-keys` where the recipe's class is given)."""
    if config_class is not None:
        p.add_argument("--show-keys", action=ShowKeys, config_class=config_class)
    config = p.add_argument("--config", "-c", required=True, help="recipe YAML (see recipes/)")
    config.complete = RECIPE_FILES
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="override recipe keys")
    p.add_argument("--dry-run", action="store_true", help="validate config and data, print them, exit 0")
    p.add_argument("--resume", action="store_true", help="continue the run in output_dir from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
