"""What `chatalign <stage>` prints: the dry run's resolved config and data check, and a finished run's summary."""

from __future__ import annotations

import json
import os
from collections.abc import Callable


def print_dry_run(cfg, check_data: Callable[[], dict]) -> int:
    """Print the resolved config, then the data statistics `check_data` returns (it raises on bad data)."""
    import yaml

    print("# resolved config")
    print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False).rstrip())
    stats = check_data()
    print("# data")
    print(json.dumps(stats, indent=2, ensure_ascii=False))
    print("dry run: config and data are valid")
    return 0


def print_run_summary(output_dir: str, summary: dict,
                      files: str = "model/, report.md, metrics.jsonl, manifest.json") -> None:
    """The summary's scalar entries as JSON and where the run directory is; on rank 0 only (one, not one per rank)."""
    if int(os.environ.get("RANK", "0")) != 0:
        return
    print(json.dumps({k: v for k, v in summary.items() if not isinstance(v, (dict, list))}, indent=2))
    print(f"run directory: {output_dir} ({files})")
