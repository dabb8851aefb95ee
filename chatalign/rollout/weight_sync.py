"""A training model's weights as a generation engine loads them: checkpoint names, LoRA folded in.

vLLM (`VLLMEngine.load_weights`) takes `(name, tensor)` pairs named as in the model's Hugging Face checkpoint.
A PEFT-wrapped policy names its layers `base_model.model.<name>` with `.base_layer` inside a LoRA layer and holds
its update in separate `lora_A` / `lora_B` matrices; the engine needs `W + scale * B @ A` under the plain name.
"""

from __future__ import annotations

import torch

PEFT_PREFIX = "base_model.model."


def checkpoint_weights(model) -> list[tuple[str, torch.Tensor]]:
    """(checkpoint name, tensor) of every weight of `model`, LoRA adapters merged (the model is not changed)."""
    merged = lora_merged_weights(model)
    out = []
    for name, tensor in model.state_dict().items():
        if "lora_" in name:
            continue
        name = name.removeprefix(PEFT_PREFIX).replace(".base_layer.", ".")
        out.append((name, merged.get(name, tensor).detach()))
    return out


@torch.no_grad()
def lora_merged_weights(model) -> dict[str, torch.Tensor]:
    """checkpoint name -> base weight + the active adapters' delta, for each LoRA-wrapped linear layer."""
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:
        return {}
    merged = {}
    for name, module in model.named_modules():
        if not isinstance(module, LoraLayer) or not hasattr(module, "base_layer"):
            continue
        weight = module.base_layer.weight
        if weight.__class__.__name__ == "Params4bit":
            raise NotImplementedError("a 4-bit (QLoRA) policy's weights cannot be handed to the generation "
                                      "engine: use generation.backend: native with lora.quantize")
        delta = sum((module.get_delta_weight(a) for a in module.active_adapters if a in module.lora_A),
                    torch.zeros_like(weight))
        merged[f"{name.removeprefix(PEFT_PREFIX)}.weight"] = weight + delta.to(weight.dtype)
    return merged
