"""From a stage recipe to a `StageSpec` for the memory planner: model shapes, phases, and changes to try.

Model shapes come from config.json only (no weights): a model directory, a run directory's `model/`, a hub id
in the local cache, or the published shapes in `chatalign.plan.memory.KNOWN_SHAPES`. A run directory that
does not exist yet (the recipes chain through them) is traced to the recipe beside this one whose
`output_dir` writes it, and that recipe's model is used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import yaml

from chatalign import registry
from chatalign.config import load_config, read_yaml
from chatalign.embedded import embedded_model_dir, is_embedded
from chatalign.errors import ConfigError, UserError
from chatalign.plan.memory import KNOWN_SHAPES, ModelShape, known_shape
from chatalign.plan.phases import StageSpec
from chatalign.stage import Stage

SHAPE_HINT = f"pass --model-config (a model directory, a config.json, or one of {', '.join(KNOWN_SHAPES)})"


@dataclass
class PlanInputs:
    recipe: Path
    overrides: list[str]
    prompt_tokens: int = 1024
    model_config: str | None = None
    known_runs: dict[str, ModelShape] = field(default_factory=dict)  # run dir (absolute) -> its model's shape
    values: dict = field(default_factory=dict)  # {dotted key: value} set before the overrides (a pipeline step's)


def shape_from_config(path: Path, name: str) -> ModelShape:
    """Read the fields memory depends on from a config.json (Llama-style names; GPT-2-style ones too)."""
    try:
        c = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read model config: {exc}") from None
    c = {**c.get("text_config", {}), **c}

    def get(*keys, default=None):
        for k in keys:
            if c.get(k) is not None:
                return c[k]
        if default is None:
            raise UserError(f"{path}: no {keys[0]} in the model config; {SHAPE_HINT}")
        return default

    h = int(get("hidden_size", "n_embd", "d_model"))
    heads = int(get("num_attention_heads", "n_head"))
    return ModelShape(name=name, hidden=h, intermediate=int(get("intermediate_size", "n_inner", default=4 * h)),
                      layers=int(get("num_hidden_layers", "n_layer")), heads=heads,
                      kv_heads=int(get("num_key_value_heads", default=heads)), vocab=int(get("vocab_size")),
                      tied=bool(get("tie_word_embeddings", default=False)),
                      head_dim_override=c.get("head_dim"))


@lru_cache(maxsize=16)
def _recipes_in(folder: str) -> dict[str, tuple[Path, str | None]]:
    """output_dir -> (recipe, the model it starts from) for the recipes in `folder` (read once per process)."""
    out = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        stage = registry.find(data.get("stage")) if isinstance(data, dict) else None
        if stage is not None and data.get("output_dir"):
            out[str(Path(data["output_dir"]))] = (path, _start_model(data, stage.start_key))
    return out


def _start_model(data: dict, key: str) -> str | None:
    """The model a raw recipe starts from (a model section without a name: the default, `embedded`)."""
    *sections, last = key.split(".")
    node = data
    for part in sections:
        node = (node.get(part) if isinstance(node, dict) else None) or {}
    return node.get(last, "embedded" if sections else None)


def resolve_shape(name: str | None, recipe: Path, override: str | None = None, _chain: str = "",
                  known: dict[str, ModelShape] | None = None) -> ModelShape:
    if known and name and not is_embedded(name) and str(Path(name).resolve()) in known:
        return known[str(Path(name).resolve())]
    if override:
        shape = known_shape(override)
        if shape:
            return shape
        p = Path(override)
        cfg = p if p.is_file() else (p / "model" / "config.json" if (p / "model" / "config.json").is_file()
                                     else p / "config.json")
        if not cfg.is_file():
            raise UserError(f"--model-config {override}: not a known name or a model directory/config.json")
        return shape_from_config(cfg, str(override))
    if is_embedded(name):
        d = embedded_model_dir_if_converted()
        return shape_from_config(d / "config.json", "embedded") if d else KNOWN_SHAPES["smollm2-135m"]
    shape = known_shape(str(name))
    if shape:
        return shape
    p = Path(str(name))
    for cfg in (p / "model" / "config.json", p / "config.json"):
        if cfg.is_file():
            return shape_from_config(cfg, str(name))
    writer = _recipes_in(str(recipe.parent)).get(str(Path(str(name)))) if _chain.count("->") < 8 else None
    if writer is not None:
        return resolve_shape(writer[1], writer[0], None, f"{_chain}{name} (from {writer[0].name}) -> ")
    cached = _hub_cached_config(str(name))
    if cached is not None:
        return shape_from_config(cached, str(name))
    raise UserError(f"model {_chain}{name}: no config.json found (not a directory here, no recipe in "
                    f"{recipe.parent} writes it, not in the local hub cache); {SHAPE_HINT}")


def embedded_model_dir_if_converted() -> Path | None:
    try:
        return embedded_model_dir()
    except UserError:
        return None


def _hub_cached_config(name: str) -> Path | None:
    if name.count("/") != 1 or name.startswith((".", "/")):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    hit = try_to_load_from_cache(name, "config.json")
    return Path(hit) if isinstance(hit, str) else None


def build_spec(cfg, recipe: Path, inp: PlanInputs) -> StageSpec:
    """The stage's spec of a validated recipe, with the shape of the model it writes."""
    def shape_of(name):
        return resolve_shape(name, recipe, inp.model_config, known=inp.known_runs)

    stage = registry.get(cfg.stage)
    spec = stage.plan_spec(cfg, shape_of, inp.prompt_tokens)
    return replace(spec, output=shape_of(dotted(cfg, stage.start_key)))


def dotted(cfg, key: str):
    """The value of a dotted key (`model.name`) of a config."""
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def planned_stages() -> list[str]:
    return [s.name for s in registry.stages() if type(s).plan_spec is not Stage.plan_spec]


def load_stage(inp: PlanInputs, extra: list[str] | None = None):
    """The recipe's config, validated by its stage's schema (the pipeline's values, then the overrides)."""
    name = read_yaml(inp.recipe).get("stage")
    if name not in planned_stages():
        raise ConfigError(f"{inp.recipe}: stage {name!r}: chatalign plan takes a stage recipe "
                          f"({', '.join(planned_stages())}) or a pipeline")
    return load_config(registry.get(name).config_class(), inp.recipe, [*inp.overrides, *(extra or [])],
                       values=inp.values)
