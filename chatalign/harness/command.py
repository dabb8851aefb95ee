"""`chatalign eval harness`: lm-evaluation-harness tasks on a run's model and on the untouched base model, side
by side, so a stage that costs the base model's abilities shows on standard benchmarks.

    chatalign eval harness runs/quickstart-pipeline/safety --tasks data/harness/everyday_mc.yaml
    chatalign eval harness runs/my-sft --tasks hellaswag,arc_easy --limit 200 --num-fewshot 0
    chatalign eval harness my-model-dir --tasks my_task --include-path my_tasks/ --out evals/

A task is an lm-eval task name (its data comes from the Hub or the local `datasets` cache; HF_DATASETS_OFFLINE=1
works with a filled cache) or the path of a task YAML on local files (its data files are read relative to the
YAML). The scores go to RUN/harness.json (or --out) and into the pipeline report, beside the base model's;
each model's scores are cached, so the base model is evaluated once per task set. Needs the `harness` extra:
pip install 'chatalign[harness]'.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from chatalign.errors import ConfigError


def add_command(esub: argparse._SubParsersAction) -> None:
    text = "lm-evaluation-harness tasks on a model beside the untouched base model"
    p = esub.add_parser("harness", help=text, description=__doc__.split("\n\n")[0],
                        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("model", metavar="RUN_OR_DIR", help="run directory, HF model directory or `embedded`")
    p.add_argument("--tasks", required=True, help="comma-separated lm-eval task names and/or task YAML paths")
    p.add_argument("--base", default="embedded", help="the base model to compare with (default: embedded; "
                                                      "`none` to skip it)")
    p.add_argument("--include-path", default=None, help="a folder of extra lm-eval task YAMLs, found by name")
    p.add_argument("--limit", type=int, default=None, help="at most this many documents per task (default: all)")
    p.add_argument("--num-fewshot", type=int, default=None, help="few-shot examples (default: the task's own)")
    p.add_argument("--batch-size", type=int, default=8, help="documents per forward pass (default 8)")
    p.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16 (default float32)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0 (default cpu)")
    p.add_argument("--seed", type=int, default=0, help="seed of lm-eval's sampling and few-shot choice (default 0)")
    p.add_argument("--out", default=None, help="folder for harness.json (default: RUN when it is a run directory)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    p.set_defaults(handler=cmd_eval_harness)


def _settings(args: argparse.Namespace):
    from chatalign.harness.runner import HarnessSettings
    from chatalign.harness.tasks import resolve_task, split_tasks

    for flag in ("limit", "num_fewshot", "batch_size"):
        value = getattr(args, flag)
        if value is not None and (value < (0 if flag == "num_fewshot" else 1)):
            raise ConfigError(f"--{flag.replace('_', '-')} {value}: must be {'>= 0' if flag == 'num_fewshot' else '>= 1'}")
    if args.dtype not in ("float32", "bfloat16", "float16"):
        raise ConfigError(f"--dtype {args.dtype}: expected float32, bfloat16 or float16")
    if args.include_path and not Path(args.include_path).is_dir():
        raise ConfigError(f"--include-path {args.include_path}: no such folder")
    tasks = tuple(resolve_task(t) for t in split_tasks(args.tasks))
    return HarnessSettings(tasks=tasks, limit=args.limit, num_fewshot=args.num_fewshot, batch_size=args.batch_size,
                           dtype=args.dtype, device=args.device, seed=args.seed, include_path=args.include_path)


def _out_dir(args: argparse.Namespace) -> Path | None:
    if args.out:
        return Path(args.out)
    run = Path(args.model)
    return run if (run / "manifest.json").is_file() else None


def cmd_eval_harness(args: argparse.Namespace) -> int:
    from chatalign.evaluation.cache import ResultCache, default_cache_dir
    from chatalign.harness.record import join_rows, table_lines, write_harness
    from chatalign.harness.runner import evaluate_model, import_lm_eval
    from chatalign.harness.tasks import task_label
    from chatalign.models import resolve_model_path

    import_lm_eval()  # the missing extra is one line, before any model is read
    settings = _settings(args)
    resolve_model_path(args.model, "model")
    out = _out_dir(args)
    cache = ResultCache(default_cache_dir(out) if out else default_cache_dir(None))
    model = evaluate_model(args.model, settings, cache)
    base = None if args.base.lower() == "none" else evaluate_model(args.base, settings, cache)
    rows = join_rows(model["rows"], base["rows"] if base else None)
    print(f"base: {args.base}    model: {args.model}    lm-eval {model.get('lm_eval_version')}")
    print("\n".join(table_lines(rows)))
    if out:
        record = {"model": str(args.model), "base_model": None if base is None else args.base,
                  "lm_eval_version": model.get("lm_eval_version"), "rows": rows,
                  "settings": {"tasks": [task_label(t) for t in settings.tasks], "limit": settings.limit,
                               "num_fewshot": settings.num_fewshot, "seed": settings.seed},
                  "seconds": {"model": model.get("seconds"), "base": base.get("seconds") if base else None}}
        print(f"wrote {write_harness(out, record)}")
    return 0
