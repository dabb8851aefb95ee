"""Recipe loading: YAML (safe_load) + dotted command-line overrides, validated by a strict pydantic model."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, ValidationInfo
from pydantic_core import PydanticCustomError

from chatalign.data_schemas.hub import PREFIX as HUB_DATASET_PREFIX
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
    return key.split("."), yaml11_float(value)


def yaml11_float(value: Any) -> Any:
    """YAML 1.1 reads `1e-5` as a string: a string that is a float with a dot or an exponent becomes one."""
    if isinstance(value, str) and any(c in value for c in ".eE"):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def set_key(data: dict[str, Any], path: list[str], value: Any) -> None:
    """data[a][b][c] = value for the dotted key a.b.c, making the missing sections."""
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


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        set_key(data, *parse_override(text))
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


def format_validation_error(exc: ValidationError, source: str, model_cls: type[BaseModel] | None = None,
                            overrides: dict[str, str] | None = None) -> str:
    """One line per problem, each naming the dotted key: `recipe.yaml: train.lr: Input should be a number`. A key
    set by a command-line override is blamed on the override; an unknown key gets the nearest known one."""
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            near = difflib.get_close_matches(loc[-1], known_keys(model_cls, loc[:-1]), n=1) if model_cls else []
            msg = f"unknown key (did you mean {'.'.join([*loc[:-1], near[0]])}?)" if near else "unknown key (typo?)"
        where = next((f"override {text}" for k, text in (overrides or {}).items()
                      if key == k or key.startswith(k + ".") or k.startswith(key + ".")), source)
        lines.append(f"{where}: {key}: {msg}")
    return "\n".join(lines)


def known_keys(model_cls: type[BaseModel], path: list[str]) -> list[str]:
    """The field names of the config section at `path` (list positions skipped); [] when it is no model."""
    cls: Any = model_cls
    for part in path:
        if part.isdigit():
            continue
        field = cls.model_fields.get(part) if isinstance(cls, type) and issubclass(cls, BaseModel) else None
        if field is None:
            return []
        cls = next((a for a in (field.annotation, *get_args(field.annotation), *[
            x for arg in get_args(field.annotation) for x in get_args(arg)])
            if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return list(cls.model_fields) if isinstance(cls, type) and issubclass(cls, BaseModel) else []


def validate(model_cls: type[M], data: dict[str, Any], source: str = "config", recipe_dir: Path | None = None,
             overrides: list[str] | None = None) -> M:
    """Validate `data`; with `recipe_dir`, path fields are resolved against it (see RecipePath below)."""
    refuse_other_stage(model_cls, data, source)
    try:
        return model_cls.model_validate(data, context={RECIPE_DIR: recipe_dir} if recipe_dir else None)
    except ValidationError as exc:
        by_key = {".".join(parse_override(t)[0]): t for t in overrides or []}
        raise ConfigError(format_validation_error(exc, source, model_cls, by_key)) from None


def refuse_other_stage(model_cls: type[BaseModel], data: dict[str, Any], source: str) -> None:
    """A recipe of another stage (`stage: reward` given to `chatalign sft`) is one line naming the command that
    reads it, not a list of every key the two stages do not share."""
    field = model_cls.model_fields.get("stage")
    wanted = get_args(field.annotation) if field is not None else ()
    given = data.get("stage") if isinstance(data, dict) else None
    if len(wanted) == 1 and isinstance(given, str) and given != wanted[0]:
        raise ConfigError(f"{source} is a recipe for the {given} stage (stage: {given}), not {wanted[0]}: give it to "
                          f"`chatalign {given}` (see `chatalign {given} --help`)")


class PathTemplateError(ConfigError):
    """A recipe path that looks like `$VAR`, `~` or `{{ }}`."""

    def __init__(self, text: str):
        self.text = text
        super().__init__(f"path {text!r}: {NO_EXPANSION}")


NO_EXPANSION = "shell expansion and templates are not allowed in recipe paths"


def _looks_expanded(text: str) -> bool:
    return "$" in text or text.startswith("~") or "{{" in text


def resolve_path(value: str | os.PathLike, base_dir: Path) -> Path:
    """Relative paths in a recipe are relative to the recipe file; no `~`/`$VAR` expansion on purpose."""
    text = os.fspath(value)
    if _looks_expanded(text):
        raise PathTemplateError(text)
    p = Path(text)
    return p if p.is_absolute() else (base_dir / p)


# -- path fields ------------------------------------------------------------------------------------------------
# A config declares what each path field is by its type; `load_config` passes the recipe's folder in the
# validation context, so paths are resolved while validating. Validated without that context (a config rebuilt
# from a manifest, a section built in code) a path is kept as it is.
RECIPE_DIR = "recipe_dir"


def _recipe_dir(info: ValidationInfo) -> Path | None:
    return info.context.get(RECIPE_DIR) if isinstance(info.context, dict) else None


def _checked(text: str) -> str:
    if _looks_expanded(text):  # nothing expands them, so `~/runs/x` would silently be `./~/runs/x`
        raise PydanticCustomError("recipe_path", "path {path}: " + NO_EXPANSION, {"path": repr(text)})
    return text


def _from_recipe(text: str, info: ValidationInfo) -> str:
    base = _recipe_dir(info)
    if base is None or text.startswith(HUB_DATASET_PREFIX):  # a Hub dataset is not a path (data_schemas.hub)
        return text
    return str(resolve_path(_checked(text), base))


def _absolute_from_recipe(text: str, info: ValidationInfo) -> str:
    base = _recipe_dir(info)
    if base is None or text.startswith(HUB_DATASET_PREFIX):
        return text
    return str(resolve_path(_checked(text), base).resolve())


def _model_or_path(text: str, info: ValidationInfo) -> str:
    if _recipe_dir(info) is None:
        return text
    return _from_recipe(text, info) if text.startswith(("./", "../")) else _checked(text)


def _run_path(text: str, info: ValidationInfo) -> str:
    return text if _recipe_dir(info) is None else _checked(text)


# a data file the recipe reads: relative to the recipe file
RecipePath = Annotated[str, AfterValidator(_from_recipe)]
# the same, made absolute with symlinks resolved (the pipeline's data and step recipes)
AbsoluteRecipePath = Annotated[str, AfterValidator(_absolute_from_recipe)]
# a model: a hub id, `embedded`, or a directory (relative to the recipe only when written ./ or ../)
ModelRef = Annotated[str, AfterValidator(_model_or_path)]
# a run directory (an output, or an earlier run read as input): relative to the current directory
RunPath = Annotated[str, AfterValidator(_run_path)]


def model_refs(cfg: BaseModel, prefix: str = "") -> dict[str, str]:
    """{dotted key: value} of every ModelRef field of a validated config, nested sections included."""
    out: dict[str, str] = {}
    for name, field in type(cfg).model_fields.items():
        value = getattr(cfg, name)
        if isinstance(value, BaseModel):
            out.update(model_refs(value, f"{prefix}{name}."))
        elif isinstance(value, str) and any(getattr(m, "func", None) is _model_or_path for m in field.metadata):
            out[prefix + name] = value
    return out


def load_config(model_cls: type[M], path: str | os.PathLike | None, overrides: list[str] | None = None,
                values: dict[str, Any] | None = None) -> M:
    """Read a recipe file, apply `values` ({dotted key: value}) then `key.sub=value` overrides, validate with
    the recipe's folder as the base of its relative paths."""
    data: dict[str, Any] = read_yaml(path) if path else {}
    for key, value in (values or {}).items():
        set_key(data, key.split("."), yaml11_float(value))
    data = apply_overrides(data, overrides or [])
    source = str(path) if path else "command line"
    base = Path(path).resolve().parent if path else Path.cwd()
    return validate(model_cls, data, source, recipe_dir=base, overrides=overrides)


