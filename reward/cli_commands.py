"""Entry points the `chatalign` CLI calls: `chatalign reward --config ...` and `chatalign eval reward ...`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def cmd_train(config_path: str, overrides: Sequence[str] = (), dry_run: bool = False, resume: bool = False,
              progress: bool = True) -> int:
    from chatalign.cli.stage_output import print_dry_run, print_run_summary
    from chatalign.config import load_config
    from chatalign.reward.config import RewardConfig

    cfg = load_config(RewardConfig, config_path, list(overrides))
    if dry_run:
        from chatalign.reward.run import prepare

        return print_dry_run(cfg, lambda: prepare(cfg).stats)
    from chatalign.reward.run import run_reward

    summary = run_reward(cfg, resume=resume, progress=progress)
    print_run_summary(cfg.output_dir, summary)
    return 0


def cmd_eval(model: str, data_paths: Sequence[str], out_dir: str | None = None) -> int:
    """Print the accuracy tables; write eval files into out_dir, or into the run directory `model` names
    (adding a section to its report.md); a plain HF model directory with no out_dir gets nothing written."""
    from chatalign.reward.eval_report import format_tables, write_eval_files
    from chatalign.reward.evaluate import evaluate_reward_model
    from chatalign.reward.report import append_eval_section

    report = evaluate_reward_model(model, list(data_paths))
    tables = format_tables(report)
    print(tables)
    run_dir = Path(model) if (Path(model) / "manifest.json").is_file() else None
    target = Path(out_dir) if out_dir else run_dir
    if target is not None:
        stem = "eval_" + "_".join(Path(p).name.split(".")[0] for p in data_paths)[:80]
        files = write_eval_files(report, target, f"RM {Path(model).name}", prefix=stem)
        if run_dir is not None and target.resolve() == run_dir.resolve():
            body = "\n".join([f"Data: {', '.join(map(str, data_paths))}", "", tables, "",
                              f"![accuracy]({files['accuracy_png'].name})", "",
                              f"![scores]({files['scores_png'].name})"])
            append_eval_section(run_dir / "report.md", f"Evaluation on {', '.join(Path(p).name for p in data_paths)}",
                                body)
        print(f"wrote {', '.join(str(p) for p in files.values())}")
    return 0
