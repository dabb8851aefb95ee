"""The `chatalign` command. Stages are imported only when their command runs, so `--help` stays instant."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from chatalign.errors import UserError

STAGES = {
    "sft": "prompt-masked, packed supervised fine-tuning (Llama 2 sec. 3.1)",
    "reward": "train a helpfulness or safety reward model from preference pairs (sec. 3.2.2)",
    "rlhf": "rejection sampling fine-tuning and PPO rounds with the two reward models (sec. 3.2.3)",
    "gatt": "Ghost Attention: multi-turn data that keeps a system instruction alive (sec. 3.3)",
    "safety": "safety context distillation (sec. 4.2.4)",
    "pipeline": "run every stage from one YAML, resumable as a whole",
}

EPILOG = """examples:
  chatalign sft --config recipes/quickstart/sft.yaml
  chatalign sft --config recipes/quickstart/sft.yaml optim.lr=1e-4 train.epochs=1 --dry-run
  chatalign data validate my_prefs.jsonl --kind preference
  chatalign data preview data/quickstart/sft_train.jsonl --model embedded

Overrides are dotted keys of the recipe (key.sub=value, values parsed as YAML). Relative data paths in a
recipe are relative to the recipe file; output_dir is relative to the current directory.
Exit codes: 0 ok, 2 bad config/data/usage, 3 training stopped on NaN/inf, 130 interrupted (resumable)."""


def _add_stage_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", required=True, help="recipe YAML (see recipes/)")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="override recipe keys")
    p.add_argument("--dry-run", action="store_true", help="validate config and data, print them, exit 0")
    p.add_argument("--resume", action="store_true", help="continue the run in output_dir from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")


def _add_chat_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="run directory, pipeline output dir, HF model dir, or `embedded`")
    p.add_argument("--step", default=None, help="pipeline step to talk to (default: the last finished chat model)")
    p.add_argument("--system", default=None, help="system message")
    p.add_argument("--prompt", default=None, help="one turn, non-interactive: print the answer and exit")
    p.add_argument("--temperature", type=float, default=0.7, help="0 = greedy (default 0.7)")
    p.add_argument("--top-p", type=float, default=0.9)
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--chat-template", default=None, help="chatml, llama2 or zephyr instead of the model's")
    p.add_argument("--seed", type=int, default=0)


def _add_plan_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", required=True, help="a stage recipe (sft, reward, rlhf, gatt, safety)")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="override recipe keys")
    p.add_argument("--gpus", type=int, default=8)
    p.add_argument("--gpu-memory", default="80GB", help="per GPU, e.g. 80GB (= 80 GiB, as nvidia-smi counts)")
    p.add_argument("--model-config", default=None,
                   help="model shape: a model dir, a config.json, or llama2-7b / llama2-13b / llama2-70b")
    p.add_argument("--prompt-tokens", type=int, default=1024, help="prompt length assumed for generation")
    p.add_argument("--headroom", type=float, default=0.1, help="fraction of GPU memory kept free (default 0.1)")
    p.add_argument("--json", action="store_true", help="the plan as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatalign", description="Turn a base or instruct model into an aligned chat model, "
        "the way Llama 2-Chat was built: SFT -> reward models -> rejection sampling + PPO -> GAtt -> safety.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    from chatalign import __version__

    parser.add_argument("--version", action="version", version=f"chatalign {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    # the deepspeed launcher passes --local_rank=N unless told --no_local_rank; the rank is read from the env
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, text in STAGES.items():
        p = sub.add_parser(name, help=text, description=text)
        if name == "rlhf":
            rsub = p.add_subparsers(dest="rlhf_command", metavar="ACTION")
            for action, atext in [("round", "one RLHF round: rejection sampling and/or PPO as the recipe's mode says"),
                                  ("rs", "only rejection sampling fine-tuning"), ("ppo", "only PPO")]:
                _add_stage_args(rsub.add_parser(action, help=atext, description=atext))
            etext = ("the held-out comparison of a finished round again, e.g. on more prompts / samples: "
                     "`chatalign rlhf eval runs/quickstart/rlhf_round1 data.max_heldout=60 "
                     "eval.samples_per_prompt=8 eval.seed=1` (the round's own config from its manifest, run from "
                     "the directory the round ran in), or `--config ROUND.yaml` with the round's overrides; "
                     "writes <output_dir>/eval_<setting>/ (report.md, summary.json); the round is not changed")
            ep = rsub.add_parser("eval", help="re-run a finished round's held-out comparison with other settings",
                                 description=etext)
            ep.add_argument("run", nargs="?", default=None, metavar="RUN",
                            help="the round's run directory (its manifest holds the config)")
            ep.add_argument("--config", "-c", default=None, help="instead of RUN: the recipe the round ran with")
            ep.add_argument("overrides", nargs="*", metavar="key.sub=value",
                            help="eval.* / data.max_heldout to change (with --config: the round's overrides too)")
            ep.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
            st = rsub.add_parser("status", help="the chain of rounds in a runs folder with headline metrics")
            st.add_argument("path", help="a runs folder or a round's run directory")
            continue
        _add_stage_args(p)
    data = sub.add_parser("data", help="validate, convert and preview data files",
                          description="Check data files before a run; convert outside formats to ours.")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION")
    kinds = ["conversation", "preference", "prompt"]
    v = dsub.add_parser("validate", help="exit 0 if FILE is valid, else list file:line: field: problem")
    v.add_argument("file")
    v.add_argument("--kind", required=True, choices=kinds)
    v.add_argument("--format", default="auto", help="input format (default: detected)")
    c = dsub.add_parser("convert", help="write canonical JSONL from any supported format")
    c.add_argument("src")
    c.add_argument("dst")
    c.add_argument("--kind", required=True, choices=kinds)
    c.add_argument("--format", default="auto")
    pv = dsub.add_parser("preview", help="show which tokens are trained (loss mask) per example")
    pv.add_argument("file")
    pv.add_argument("--model", default="embedded", help="model/tokenizer whose chat template renders the data")
    pv.add_argument("--chat-template", default=None, help="chatml, llama2 or zephyr instead of the model's")
    pv.add_argument("--limit", type=int, default=3)
    pv.add_argument("--json", action="store_true", help='one {"segments": [{"text", "loss"}]} line per example')
    ev = sub.add_parser("eval", help="evaluate models: reward accuracy, GAtt adherence, safety rates",
                        description="Evaluate a model or run directory; tables on stdout, report + PNG in --out.")
    esub = ev.add_subparsers(dest="eval_command", metavar="WHAT")
    er = esub.add_parser("reward", help="held-out accuracy per preference strength, source and safety bin")
    er.add_argument("--model", required=True, help="reward run directory or HF sequence-classification dir")
    er.add_argument("--data", required=True, nargs="+", help="preference file(s), any supported format")
    er.add_argument("--out", default=None, help="where to write report.md and PNGs (default: the run dir)")
    eg = esub.add_parser("gatt", help="instruction adherence at turns 2/4/6/20 (paper Table 30)")
    eg.add_argument("--model", required=True)
    eg.add_argument("--data", default=None, help="dialogues {id, user_turns} (default: bundled held-out)")
    eg.add_argument("--out", default=None)
    eg.add_argument("--turns", type=int, default=20)
    eg.add_argument("--dialogues", type=int, default=12)
    es = esub.add_parser("safety", help="violation rate on adversarial prompts, false refusals on helpful/borderline")
    es.add_argument("--model", required=True)
    es.add_argument("--safety-rm", default=None, help="safety reward run directory (judge)")
    es.add_argument("--data-dir", default=None, help="folder with the eval files (default: bundled)")
    es.add_argument("--out", default=None)
    _add_chat_args(sub.add_parser("chat", help="talk to a model of a run, streaming its answer",
                                  description="Chat with a run's model (run dir, pipeline dir, HF dir or embedded)."))
    _add_plan_args(sub.add_parser("plan", help="estimate per-GPU memory of a stage recipe and the GPUs it needs",
                                  description="Per-GPU memory of a recipe's stage (weights, gradients, optimizer, "
                                  "activations, KV cache), with the arithmetic, the fit and what to change."))
    return parser


def cmd_sft(args) -> int:
    from chatalign.config import load_config
    from chatalign.sft.config import SFTConfig

    cfg = load_config(SFTConfig, args.config, args.overrides)
    if args.dry_run:
        from chatalign.cli.stage_output import print_dry_run

        return print_dry_run(cfg, lambda: __import__("chatalign.sft.run", fromlist=["prepare"]).prepare(cfg)[1].stats)
    from chatalign.cli.stage_output import print_run_summary
    from chatalign.sft.run import run_sft

    summary = run_sft(cfg, resume=args.resume, progress=not args.no_progress)
    print_run_summary(cfg.output_dir, summary)
    return 0


def cmd_stage(module: str):
    """`chatalign <stage>` for stages that expose cmd_train(config, overrides, dry_run, resume, progress)."""

    def run(args) -> int:
        import importlib

        mod = importlib.import_module(f"chatalign.{module}.cli_commands")
        return mod.cmd_train(args.config, args.overrides, dry_run=args.dry_run, resume=args.resume,
                             progress=not args.no_progress)

    return run


def cmd_pipeline(args) -> int:
    from chatalign.config import load_config
    from chatalign.pipeline.config import PipelineConfig
    from chatalign.pipeline.runner import run_pipeline

    cfg = load_config(PipelineConfig, args.config, args.overrides)
    run_pipeline(cfg, progress=not args.no_progress, dry_run=args.dry_run)
    if not args.dry_run:
        print(f"pipeline finished: {cfg.output_dir} (report.md, report.html)")
    return 0


def cmd_eval(args) -> int:
    if args.eval_command == "reward":
        from chatalign.reward.cli_commands import cmd_eval as run

        return run(args.model, args.data, args.out)
    if args.eval_command == "gatt":
        from chatalign.gatt.cli_commands import cmd_eval as run

        return run(args.model, args.data, args.out, args.turns, args.dialogues)
    if args.eval_command == "safety":
        from chatalign.safety.cli_commands import cmd_eval as run

        return run(args.model, args.safety_rm, args.out, args.data_dir)
    raise UserError("usage: chatalign eval {reward,gatt,safety} ... (see chatalign eval --help)")


def cmd_rlhf(args) -> int:
    from chatalign.rlhf import cli_commands as rc

    if args.rlhf_command == "status":
        return rc.cmd_status(args.path)
    if args.rlhf_command == "eval":
        run, overrides = args.run, list(args.overrides)
        if run is not None and "=" in run:  # `--config C key=value`: argparse took the first override as RUN
            run, overrides = None, [run, *overrides]
        if (run is None) == (args.config is None):
            raise UserError("chatalign rlhf eval: give the round's run directory or --config RECIPE (one of them)")
        return rc.cmd_eval(args.config, overrides, run_dir=run, progress=not args.no_progress)
    action = {"round": rc.cmd_round, "rs": rc.cmd_rs, "ppo": rc.cmd_ppo}.get(args.rlhf_command)
    if action is None:
        raise UserError("usage: chatalign rlhf {round,rs,ppo,eval,status} ... (see chatalign rlhf --help)")
    return action(args.config, args.overrides, dry_run=args.dry_run, resume=args.resume,
                  progress=not args.no_progress)


def cmd_data(args) -> int:
    if args.data_command == "validate":
        from chatalign.data_schemas import validate_file

        issues = validate_file(args.file, args.kind, fmt=args.format)
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
    if args.data_command == "preview":
        from chatalign.text.preview import preview_file

        print(preview_file(args.file, args.model, limit=args.limit, as_json=args.json,
                           chat_template=args.chat_template))
        return 0
    raise UserError("usage: chatalign data {validate,convert,preview} ... (see chatalign data --help)")


def cmd_chat(args) -> int:
    from chatalign.cli.chat import cmd_chat as run

    return run(args)


def cmd_plan(args) -> int:
    from chatalign.plan.report import cmd_plan as run

    return run(args.config, args.overrides, args.gpus, args.gpu_memory, args.model_config, args.prompt_tokens,
               args.headroom, args.json)


def not_built(name: str) -> int:
    print(f"chatalign {name}: not built yet in this version", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    handlers = {"sft": cmd_sft, "data": cmd_data, "reward": cmd_stage("reward"), "gatt": cmd_stage("gatt"),
                "eval": cmd_eval, "pipeline": cmd_pipeline,
                "safety": cmd_stage("safety"), "rlhf": cmd_rlhf, "chat": cmd_chat, "plan": cmd_plan}
    if args.command is None:
        parser.print_help()
        return 0
    try:
        handler = handlers.get(args.command)
        if handler is None:
            return not_built(args.command)
        return handler(args)
    except UserError as exc:
        print(f"chatalign: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("chatalign: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
