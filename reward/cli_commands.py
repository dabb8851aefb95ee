"""What `chatalign eval reward ...` runs (`chatalign reward --config ...` is the stage's `command`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


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
