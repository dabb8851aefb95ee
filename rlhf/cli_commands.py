"""Entry points the `chatalign` CLI calls: `chatalign rlhf round|rs|ppo|eval --config ...`, `chatalign rlhf status`.

`rs` and `ppo` are rounds with the mode fixed (rejection sampling only, PPO only); `round` runs what the
recipe's `mode` says. All return the process exit code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence


def _load(config_path: str, overrides: Sequence[str], mode: str | None):
    from chatalign.config import load_config
    from chatalign.rlhf.config import RLHFRoundConfig

    extra = [f"mode={mode}"] if mode else []
    return load_config(RLHFRoundConfig, config_path, [*overrides, *extra])


def _run(config_path, overrides, dry_run, resume, progress, mode: str | None) -> int:
    cfg = _load(config_path, overrides, mode)
    if dry_run:
        import yaml

        from chatalign.rlhf.round import plan

        print("# resolved config")
        print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False).rstrip())
        print("# round")
        print(json.dumps(plan(cfg), indent=2))
        print("dry run: config, inputs and data are valid")
        return 0
    from chatalign.rlhf.round import run_round
    from chatalign.training.distributed import leave_process_group

    summary = run_round(cfg, resume=resume, progress=progress)
    leave_process_group()
    print(json.dumps({k: v for k, v in summary.items() if not isinstance(v, (dict, list))}, indent=2))
    print(f"run directory: {cfg.output_dir} (model/, report.md, metrics.jsonl, data/, manifest.json)")
    return 0


def cmd_round(config_path: str, overrides: Sequence[str] = (), dry_run: bool = False, resume: bool = False,
              progress: bool = True) -> int:
    return _run(config_path, overrides, dry_run, resume, progress, None)


def cmd_rs(config_path: str, overrides: Sequence[str] = (), dry_run: bool = False, resume: bool = False,
           progress: bool = True) -> int:
    return _run(config_path, overrides, dry_run, resume, progress, "rs")


def cmd_ppo(config_path: str, overrides: Sequence[str] = (), dry_run: bool = False, resume: bool = False,
            progress: bool = True) -> int:
    return _run(config_path, overrides, dry_run, resume, progress, "ppo")


def cmd_eval(config_path: str | None, overrides: Sequence[str] = (), run_dir: str | None = None,
             progress: bool = True) -> int:
    from chatalign.rlhf.evaluate.rerun import config_of_round, reevaluate_round

    cfg = config_of_round(run_dir, overrides) if run_dir else _load(config_path, overrides, None)
    summary, out_dir = reevaluate_round(cfg, progress=progress)
    print(json.dumps(summary, indent=2))
    print(f"written: {out_dir}/report.md, {out_dir}/summary.json")
    return 0


def cmd_status(path: str) -> int:
    from pathlib import Path

    from chatalign.errors import UserError
    from chatalign.rlhf.status import status_text

    if not Path(path).is_dir():
        raise UserError(f"{path}: not a directory")
    print(status_text(path))
    return 0
