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

from chatalign.config import load_config, read_yaml
from chatalign.embedded import embedded_model_dir, is_embedded
from chatalign.errors import ConfigError, UserError
from chatalign.plan.memory import KNOWN_SHAPES, LINEAR_MODULES, ModelShape, Zero, known_shape
from chatalign.plan.phases import FrozenModel, Generation, PhaseSpec, StageSpec, TrainedModel
from chatalign.stages import config_class

PLANNED_STAGES = ("sft", "reward", "rlhf", "gatt", "safety")
SHAPE_HINT = f"pass --model-config (a model directory, a config.json, or one of {', '.join(KNOWN_SHAPES)})"


@dataclass
class PlanInputs:
    recipe: Path
    overrides: list[str]
    prompt_tokens: int = 1024
    model_config: str | None = None
    known_runs: dict[str, ModelShape] = field(default_factory=dict)  # run dir (absolute) -> its model's shape


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
        if isinstance(data, dict) and data.get("output_dir"):
            model = data.get("start") if data.get("stage") == "rlhf" else (data.get("model") or {}).get("name", "embedded")
            out[str(Path(data["output_dir"]))] = (path, model)
    return out


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


def _zero(ds) -> Zero:
    return Zero(enabled=ds.enabled, stage=ds.zero_stage, offload_optimizer=ds.offload_optimizer != "none",
                offload_param=ds.offload_param != "none")


def _lora(lora) -> dict:
    if not lora.enabled:
        return {}
    mods = LINEAR_MODULES if lora.target_modules == "all-linear" else tuple(
        [lora.target_modules] if isinstance(lora.target_modules, str) else lora.target_modules)
    return {"lora_r": lora.r, "lora_modules": mods}


def _policy(label, shape, train, lora) -> TrainedModel:
    return TrainedModel(label, shape, "lm", micro=train.micro_batch_rows, tokens_per_item=train.seq_len,
                        lm_positions_per_item=train.seq_len, **_lora(lora))


def _gen(name: str, models: tuple[FrozenModel, ...], batch: int, prompt: int, new: int) -> PhaseSpec:
    return PhaseSpec(name, distributed=False, frozen=models, generation=Generation(batch, prompt, new))


def build_spec(cfg, recipe: Path, inp: PlanInputs) -> StageSpec:
    def shape_of(name):
        return resolve_shape(name, recipe, inp.model_config, known=inp.known_runs)

    return replace(_build(cfg, inp, shape_of), output=shape_of(cfg.start if cfg.stage == "rlhf" else cfg.model.name))


def _build(cfg, inp: PlanInputs, shape_of) -> StageSpec:
    stage = cfg.stage
    P = inp.prompt_tokens
    wb = 4 if cfg.model.dtype == "float32" else 2  # "auto" is bf16 on a GPU
    ckpt = cfg.model.gradient_checkpointing
    if stage in ("sft", "gatt", "safety"):
        shape = shape_of(cfg.model.name)
        train = PhaseSpec("train", True, trained=(_policy("policy", shape, cfg.train, cfg.lora),),
                          zero=_zero(cfg.deepspeed))
        pol = (FrozenModel("policy", shape),)
        if stage == "sft":
            gens = [_gen("eval generation", pol, cfg.eval.batch_size, P, cfg.eval.max_new_tokens)] \
                if cfg.data.eval else []
        elif stage == "gatt":
            s, e = cfg.synthesis, cfg.eval
            gens = [_gen("synthesis", pol, s.batch_size, P, s.max_new_tokens),
                    _gen("evaluation", pol, e.batch_size, P, e.max_new_tokens)]
        else:
            rm = (FrozenModel("safety RM", shape_of(cfg.safety_rm.name), "scalar"),)
            d, e = cfg.distill, cfg.eval
            gens = [_gen("distillation", pol + rm, d.batch_size, P, d.max_new_tokens),
                    _gen("evaluation", pol + rm, e.batch_size, P, e.max_new_tokens)]
        return StageSpec(stage, (train, *gens), wb, ckpt)
    if stage == "reward":
        t = cfg.train
        rm = TrainedModel("reward model", shape_of(cfg.model.name), "scalar", micro=t.micro_batch_rows,
                          tokens_per_item=t.row_tokens, trainable_layers=t.trainable_layers, **_lora(cfg.lora))
        return StageSpec(stage, (PhaseSpec("train", True, trained=(rm,), zero=_zero(cfg.deepspeed)),), wb, ckpt)
    if stage == "rlhf":
        return _rlhf_spec(cfg, shape_of, P, wb, ckpt)
    raise ConfigError(f"chatalign plan: stage {stage!r} is not planned (one of {', '.join(PLANNED_STAGES)})")


def _rlhf_spec(cfg, shape_of, P: int, wb: int, ckpt: bool) -> StageSpec:
    policy = shape_of(cfg.start)
    rms = (FrozenModel("helpful RM", shape_of(cfg.reward.helpful), "scalar"),
           FrozenModel("safety RM", shape_of(cfg.reward.safety), "scalar"))
    phases, notes = [], []
    if "rs" in cfg.mode:
        rs = cfg.rs
        phases.append(_gen("RS sampling", (FrozenModel("policy", policy), *rms), rs.batch_size, P,
                           rs.max_new_tokens))
        phases.append(PhaseSpec("RS fine-tune", True, trained=(_policy("policy", policy, rs.train, rs.lora),),
                                zero=_zero(rs.deepspeed)))
    if "ppo" in cfg.mode:
        ppo = cfg.ppo
        ds = getattr(ppo, "deepspeed", None)  # PPO under DeepSpeed, where this version's config has it
        if ds is None:
            notes.append("PPO runs in one process in this version: --gpus does not shard it")
        v = ppo.value.init
        value_shape = shape_of(cfg.reward.helpful if v == "helpful" else cfg.reward.safety if v == "safety" else v)
        micro, tokens = ppo.micro_batch or ppo.minibatch, P + ppo.max_new_tokens
        pol = TrainedModel("policy", policy, "lm", micro=micro, tokens_per_item=tokens,
                           lm_positions_per_item=ppo.max_new_tokens, logit_saved_bytes=12, logit_chunked=False,
                           logit_transient_extra=0, **_lora(ppo.lora))
        val = TrainedModel("value", value_shape, "scalar", micro=micro, tokens_per_item=tokens,
                           trainable_layers=ppo.value.trainable_layers)
        frozen = rms if ppo.lora.enabled else (FrozenModel("reference", policy), *rms)
        zero = _zero(ds) if ds is not None else Zero(False)
        sharded = ds is not None and getattr(ppo, "frozen_models", "replicated") == "zero3"
        common = dict(distributed=ds is not None, trained=(pol, val), frozen=frozen, zero=zero,
                      frozen_sharded=sharded)
        phases.append(PhaseSpec("PPO generation", train_step=False,
                                generation=Generation(ppo.gen_batch_size, P, ppo.max_new_tokens), **common))
        phases.append(PhaseSpec("PPO update", **common))
    if cfg.data.heldout:  # rank 0 alone: the round's model (then the earlier ones) answers, whole RMs score
        phases.append(_gen("round evaluation", (FrozenModel("policy", policy), *rms), cfg.eval.batch_size, P,
                           cfg.eval_max_new_tokens))
    return StageSpec("rlhf", tuple(phases), wb, ckpt, tuple(notes))


def candidate_overrides(cfg) -> list[str]:
    """Single recipe changes worth trying when a plan does not fit (each a space-separated override list)."""
    out: list[str] = []

    def ds_changes(prefix: str, ds) -> None:
        if not ds.enabled or ds.zero_stage < 3:
            out.append(f"{prefix}enabled=true {prefix}zero_stage=3")
        if ds.offload_optimizer == "none":
            out.append(f"{prefix}enabled=true {prefix}offload_optimizer=cpu")
        if ds.offload_param == "none":
            out.append(f"{prefix}enabled=true {prefix}zero_stage=3 {prefix}offload_optimizer=cpu "
                       f"{prefix}offload_param=cpu")

    if not cfg.model.gradient_checkpointing:
        out.append("model.gradient_checkpointing=true")
    if cfg.stage in ("sft", "gatt", "safety", "reward"):
        ds_changes("deepspeed.", cfg.deepspeed)
        if cfg.train.micro_batch_rows > 1:
            out.append("train.micro_batch_rows=1")
    gen_keys = {"sft": ["eval.batch_size"], "gatt": ["synthesis.batch_size", "eval.batch_size"],
                "safety": ["distill.batch_size", "eval.batch_size"]}.get(cfg.stage, [])
    if cfg.stage == "rlhf":
        if "rs" in cfg.mode:
            ds_changes("rs.deepspeed.", cfg.rs.deepspeed)
            if cfg.rs.train.micro_batch_rows > 1:
                out.append("rs.train.micro_batch_rows=1")
            gen_keys.append("rs.batch_size")
        if "ppo" in cfg.mode:
            ppo = cfg.ppo
            if getattr(ppo, "deepspeed", None) is not None:
                ds_changes("ppo.deepspeed.", ppo.deepspeed)
            if getattr(ppo, "frozen_models", "zero3") == "replicated":
                out.append("ppo.frozen_models=zero3")
            if not ppo.lora.enabled:
                out.append("ppo.lora.enabled=true")
            if not ppo.value.trainable_layers:
                out.append("ppo.value.trainable_layers=4")
            if (ppo.micro_batch or ppo.minibatch) > 1:
                out.append("ppo.micro_batch=1")
            gen_keys.append("ppo.gen_batch_size")
        if cfg.data.heldout:
            gen_keys.append("eval.batch_size")
    for key in gen_keys:
        node = cfg
        for part in key.split("."):
            node = getattr(node, part)
        if node > 8:
            out.append(f"{key}={max(8, node // 4)}")
    return out


def load_stage(inp: PlanInputs, extra: list[str] | None = None):
    data = read_yaml(inp.recipe)
    stage = data.get("stage")
    if stage not in PLANNED_STAGES:
        raise ConfigError(f"{inp.recipe}: stage {stage!r}: chatalign plan takes a stage recipe "
                          f"({', '.join(PLANNED_STAGES)}) or a pipeline")
    return load_config(config_class(stage), inp.recipe, [*inp.overrides, *(extra or [])])
