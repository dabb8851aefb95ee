"""Recipe loading: YAML (safe_load) + dotted command-line overrides, validated by a strict pydantic model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from chatalign.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base of every config: unknown keys are errors, values are re-validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `a.b.c=value`; the value is read as a YAML scalar/flow value (so `lr=1e-5`, `x=[1,2]` work)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key.sub=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {key}: cannot parse value {raw!r}: {exc}") from None
    if isinstance(value, str):  # YAML 1.1 reads `1e-5` as a string
        try:
            value = float(value) if any(c in value for c in ".eE") else value
        except ValueError:
            pass
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = {}
                node[part] = child
            if not isinstance(child, dict):
                raise ConfigError(f"override {'.'.join(path)}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return data


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark else str(p)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping of keys to values")
    return data


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem, each naming the dotted key: `recipe.yaml: train.lr: Input should be a number`."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (typo?)"
        lines.append(f"{source}: {key}: {msg}")
    return "\n".join(lines)


def validate(model_cls: type[M], data: dict[str, Any], source: str = "config") -> M:
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


class PathTemplateError(ConfigError):
    """A recipe path that looks like `$VAR`, `~` or `{{ }}`: `load_config` names the key that holds it."""

    def __init__(self, text: str):
        self.text = text
        super().__init__(f"path {text!r}: shell expansion and templates are not allowed in recipe paths")


def _looks_expanded(text: str) -> bool:
    return "$" in text or text.startswith("~") or "{{" in text


# Paths that are not resolved against the recipe (run directories, model names, the output) but must not look
# like shell expansion or templates either: nothing expands them, so `~/runs/x` would silently be `./~/runs/x`.
UNRESOLVED_PATH_KEYS = ("output_dir", "model.name", "start", "sft_run", "reward.helpful", "reward.safety",
                        "safety_rm.name")


def resolve_path(value: str | os.PathLike, base_dir: Path) -> Path:
    """Relative paths in a recipe are relative to the recipe file; no `~`/`$VAR` expansion on purpose."""
    text = os.fspath(value)
    if _looks_expanded(text):
        raise PathTemplateError(text)
    p = Path(text)
    return p if p.is_absolute() else (base_dir / p)


def load_config(model_cls: type[M], path: str | os.PathLike | None, overrides: list[str] | None = None) -> M:
    """Read a recipe file, apply `key.sub=value` overrides, validate; the recipe dir is kept for paths."""
    data: dict[str, Any] = read_yaml(path) if path else {}
    data = apply_overrides(data, overrides or [])
    source = str(path) if path else "command line"
    cfg = validate(model_cls, data, source)
    base = Path(path).resolve().parent if path else Path.cwd()
    for key in UNRESOLVED_PATH_KEYS:
        value: Any = cfg
        for part in key.split("."):
            value = getattr(value, part, None)
        if isinstance(value, str) and _looks_expanded(value):
            raise ConfigError(f"{source}: {key}: {PathTemplateError(value)}")
    if hasattr(cfg, "resolve_paths"):
        try:
            cfg.resolve_paths(base)
        except PathTemplateError as exc:
            keys = _keys_holding(data, exc.text)
            raise ConfigError(f"{source}: {keys[0] if keys else 'a path'}: {exc}") from None
    return cfg


def _keys_holding(data: Any, text: str, prefix: str = "") -> list[str]:
    """Dotted keys (list items by index) whose value is `text`: where a bad path came from."""
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return [prefix] if data == text and prefix else []
    return [k for key, v in items for k in _keys_holding(v, text, f"{prefix}.{key}" if prefix else str(key))]
