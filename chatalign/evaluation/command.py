"""`chatalign eval independent`: a model (run directory, HF directory or `embedded`) beside the untouched base
model on the independent sets, as a table on stdout (and independent.json with --out).

    chatalign eval independent --model runs/quickstart-pipeline/safety --suites general,safety
    chatalign eval independent --model my-run judge.kind=llm judge.llm.backend=openai \\
        judge.llm.base_url=http://localhost:8000/v1 judge.llm.model=qwen judge.llm.api_key_env=MY_KEY

Overrides are keys of the `independent:` section of a recipe (chatalign.evaluation.config).
"""

from __future__ import annotations

import argparse

from chatalign.errors import ConfigError

SUITES = ("general", "safety")


def add_command(esub: argparse._SubParsersAction) -> None:
    text = "a model beside the untouched base model on the independent sets (data/independent)"
    p = esub.add_parser("independent", help=text, description=__doc__.split("\n\n")[0],
                        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--model", required=True, metavar="RUN_OR_DIR", help="run directory, HF model dir or `embedded`")
    p.add_argument("--suites", default="general", help=f"comma-separated, of: {', '.join(SUITES)} (default general)")
    p.add_argument("--base", default=None, help="the base model to compare with (default: embedded)")
    p.add_argument("--data-dir", default=None, help="the independent sets (default: data/independent)")
    p.add_argument("--out", default=None, help="also write independent.json (and the judged answers) here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="independent-section keys, e.g. "
                                                                          "general.max_new_tokens=64")
    p.set_defaults(handler=cmd_eval_independent)


def parse_suites(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in SUITES]
    if unknown or not names:
        raise ConfigError(f"--suites {text!r}: expected a comma-separated list of {', '.join(SUITES)}")
    return list(dict.fromkeys(names))


def cmd_eval_independent(args: argparse.Namespace) -> int:
    from chatalign.config import load_config
    from chatalign.evaluation.config import IndependentEvalConfig

    values: dict = {"enabled": True}
    if args.base:
        values["base_model"] = args.base
    if args.data_dir:
        values["data_dir"] = args.data_dir
    cfg = load_config(IndependentEvalConfig, None, args.overrides, values=values)
    suites = parse_suites(args.suites)
    print(evaluate_and_format(cfg, args.model, suites, args.out, progress=not args.no_progress))
    return 0


def evaluate_and_format(cfg, model: str, suites: list[str], out: str | None, progress: bool) -> str:
    """Run the suites on the base model and `model`; the table (and independent.json under `out`)."""
    from pathlib import Path

    from chatalign.evaluation.record import write_independent
    from chatalign.evaluation.runner import cache_dir_for, seconds_table
    from chatalign.evaluation.stage_hook import core_suites, suite_rows, write_samples
    from chatalign.evaluation.table import format_rows

    rows, agreement, results = suite_rows(cfg, core_suites(suites), {"base": cfg.base_model, "after": model},
                                          cache_dir_for(cfg, out), progress)
    lines = [f"base: {cfg.base_model}    model: {model}", format_rows(rows, ("base", "after"))]
    lines += [f"agreement: {a.what}: {100 * a.agree:.1f}% of {a.n}" for a in agreement]
    lines += [f"cost: {c['suite']} on {c['model']}: {c.get('cpu', '-')} CPU s, {c.get('wall', '-')} s wall"
              for c in seconds_table(results)]
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        lines.append(f"wrote {write_independent(out, rows, agreement, model, '-')}")
        write_samples(Path(out), results)
    return "\n".join(lines)
