"""Task specs for lm-eval: a registered task name, or the path of a task YAML on local files.

lm-eval reads a YAML task's `dataset_kwargs.data_files` relative to the working directory; a task shipped beside
its data (data/harness/) should work from anywhere, so relative data paths are resolved from the YAML's folder here
and the task is handed to lm-eval as a config dict. Everything else in the YAML is lm-eval's own format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chatalign.errors import ConfigError

YAML_SUFFIXES = (".yaml", ".yml")


def split_tasks(text: str) -> list[str]:
    """`--tasks a,b,path/c.yaml` -> the names and paths, in order, without repeats."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ConfigError(f"--tasks {text!r}: expected a comma-separated list of lm-eval task names or task YAMLs")
    return list(dict.fromkeys(names))


def _absolute(value: Any, base: Path) -> Any:
    """A data file entry (a path, a list of them, or a split -> paths mapping) with relative paths made absolute."""
    if isinstance(value, str):
        p = Path(value).expanduser()
        return str(p if p.is_absolute() or "://" in value else (base / p).resolve())
    if isinstance(value, list):
        return [_absolute(v, base) for v in value]
    if isinstance(value, dict):
        return {k: _absolute(v, base) for k, v in value.items()}
    return value


def _read_yaml(path: Path) -> dict:
    """lm-eval's own YAML reader (it knows `include:` and `!function`); its home moved in lm-eval 0.4.10."""
    try:
        from lm_eval.tasks._yaml_loader import load_yaml
    except ImportError:
        from lm_eval.utils import load_yaml_config

        return load_yaml_config(yaml_path=str(path), mode="full")
    return load_yaml(path)


def load_task_yaml(path: Path) -> dict:
    """A task YAML as lm-eval's loader reads it, its local data paths resolved from the YAML's folder."""
    try:
        config = _read_yaml(path)
    except Exception as exc:  # lm-eval raises yaml and OS errors alike; the user needs the file and the reason
        raise ConfigError(f"--tasks {path}: not a readable lm-eval task YAML ({type(exc).__name__}: {exc})") from None
    if not isinstance(config, dict) or "task" not in config:
        raise ConfigError(f"--tasks {path}: an lm-eval task YAML needs a `task:` name")
    kwargs = dict(config.get("dataset_kwargs") or {})
    for key in ("data_files", "data_dir"):
        if key in kwargs:
            kwargs[key] = _absolute(kwargs[key], path.parent)
    if kwargs:
        config["dataset_kwargs"] = kwargs
    return config


def resolve_task(spec: str) -> str | dict:
    """A name stays a name (lm-eval's registry, or --include-path); a YAML path becomes its config dict."""
    if spec.endswith(YAML_SUFFIXES):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ConfigError(f"--tasks {spec}: no such task YAML")
        return load_task_yaml(path.resolve())
    return spec


def task_label(task: str | dict) -> str:
    return task["task"] if isinstance(task, dict) else task
