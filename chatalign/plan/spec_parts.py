"""The parts a stage builds its `StageSpec` from (its `plan_spec.py`), and the recipe changes most stages share.

A stage reads its own config; these helpers only turn the shared config sections (model, LoRA, DeepSpeed,
a training section with `micro_batch_rows`/`seq_len`) into planner terms.
"""

from __future__ import annotations

from chatalign.plan.memory import LINEAR_MODULES, ModelShape, Zero
from chatalign.plan.phases import FrozenModel, Generation, PhaseSpec, StageSpec, TrainedModel


def weight_bytes(model) -> int:
    """Bytes per weight of a model section's dtype ("auto" is bf16 on a GPU)."""
    return 4 if model.dtype == "float32" else 2


def zero_of(ds) -> Zero:
    return Zero(enabled=ds.enabled, stage=ds.zero_stage, offload_optimizer=ds.offload_optimizer != "none",
                offload_param=ds.offload_param != "none")


def lora_of(lora) -> dict:
    """TrainedModel's LoRA fields for a LoRA section ({} when LoRA is off)."""
    if not lora.enabled:
        return {}
    mods = LINEAR_MODULES if lora.target_modules == "all-linear" else tuple(
        [lora.target_modules] if isinstance(lora.target_modules, str) else lora.target_modules)
    return {"lora_r": lora.r, "lora_modules": mods, "base_4bit": getattr(lora, "quantize", "none") == "4bit"}


def policy(label: str, shape: ModelShape, train, lora) -> TrainedModel:
    """A chat model fine-tuned on packed rows of `train.seq_len` tokens, every position through the LM head."""
    return TrainedModel(label, shape, "lm", micro=train.micro_batch_rows, tokens_per_item=train.seq_len,
                        lm_positions_per_item=train.seq_len,
                        trainable_layers=getattr(train, "trainable_layers", None), **lora_of(lora))


def generation(name: str, models: tuple[FrozenModel, ...], batch: int, prompt: int, new: int,
               backend=None) -> PhaseSpec:
    """A one-process generation phase: `models` resident, `batch` prompts of `prompt` tokens, `new` tokens each;
    `backend`: the recipe's `generation:` section (vLLM reserves its memory_share of the GPU instead)."""
    return PhaseSpec(name, distributed=False, frozen=models,
                     generation=Generation(batch, prompt, new, engine_share(backend)))


def engine_share(backend) -> float | None:
    """The GPU share a vLLM engine reserves (`generation.memory_share`), None for the native engine."""
    return backend.memory_share if backend is not None and backend.backend == "vllm" else None


def finetune_phase(cfg, shape: ModelShape) -> PhaseSpec:
    """The training phase of a stage that fine-tunes its `model` with `train`, `lora` and `deepspeed` sections."""
    return PhaseSpec("train", True, trained=(policy("policy", shape, cfg.train, cfg.lora),),
                     zero=zero_of(cfg.deepspeed))


def finetune_spec(stage: str, cfg, shape: ModelShape, generations: list[PhaseSpec]) -> StageSpec:
    """A fine-tuning stage's spec: its training phase (`finetune_phase`), then its generation phases."""
    return StageSpec(stage, (finetune_phase(cfg, shape), *generations), weight_bytes(cfg.model),
                     cfg.model.gradient_checkpointing)


def derived_spec(stage: str, cfg, shape: ModelShape, models: tuple[FrozenModel, ...], making: tuple[str, str],
                 prompt_tokens: int) -> StageSpec:
    """A stage that makes its rows with frozen `models` (phase `making[0]`, generation settings in the config
    section `making[1]`), fine-tunes on them (`finetune_spec`) and evaluates with the same models (`eval`)."""
    phase, section = making
    make, ev = getattr(cfg, section), cfg.eval
    return finetune_spec(stage, cfg, shape, [
        generation(phase, models, make.batch_size, prompt_tokens, make.max_new_tokens, cfg.generation),
        generation("evaluation", models, ev.batch_size, prompt_tokens, ev.max_new_tokens, cfg.generation)])


def deepspeed_changes(prefix: str, ds) -> list[str]:
    """ZeRO-3 and the offloads a DeepSpeed section (at `prefix`) does not use yet."""
    out = []
    if not ds.enabled or ds.zero_stage < 3:
        out.append(f"{prefix}enabled=true {prefix}zero_stage=3")
    if ds.offload_optimizer == "none":
        out.append(f"{prefix}enabled=true {prefix}offload_optimizer=cpu")
    if ds.offload_param == "none":
        out.append(f"{prefix}enabled=true {prefix}zero_stage=3 {prefix}offload_optimizer=cpu "
                   f"{prefix}offload_param=cpu")
    return out


def finetune_changes(cfg) -> list[str]:
    """Gradient checkpointing, ZeRO and offloads, one row per micro-batch: for a stage with `model`, `train`
    and `deepspeed` sections."""
    out = [] if cfg.model.gradient_checkpointing else ["model.gradient_checkpointing=true"]
    out += deepspeed_changes("deepspeed.", cfg.deepspeed)
    if cfg.train.micro_batch_rows > 1:
        out.append("train.micro_batch_rows=1")
    return out


def derived_changes(cfg, section: str) -> list[str]:
    """`finetune_changes`, then smaller generation batches in `section` and `eval` (a `derived_spec` stage)."""
    return finetune_changes(cfg) + smaller_batches(cfg, [f"{section}.batch_size", "eval.batch_size"])


def smaller_batches(cfg, keys: list[str]) -> list[str]:
    """A quarter of each generation batch size over 8 (at least 8), for the dotted config `keys`."""
    out = []
    for key in keys:
        node = cfg
        for part in key.split("."):
            node = getattr(node, part)
        if node > 8:
            out.append(f"{key}={max(8, node // 4)}")
    return out
