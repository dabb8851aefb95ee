"""LoRA and QLoRA for every training stage: the adapters put on a model, the 4-bit base it may be loaded as, and
what a finished run writes (the merged model, and the adapter in PEFT format beside it).

QLoRA (Dettmers et al. 2023): the frozen base weights in 4-bit NormalFloat with double quantization, LoRA adapters
trained in the compute dtype. The merged model is made the usual way for QLoRA: the base reloaded in full
precision and the trained adapter merged into it, not merged into rounded 4-bit weights.
"""

from __future__ import annotations

import logging
from pathlib import Path

from chatalign.errors import UserError
from chatalign.runs import ADAPTER as ADAPTER_DIR

log = logging.getLogger(__name__)
MISSING_BNB = ("lora.quantize: 4bit needs bitsandbytes (pip install 'chatalign[qlora]'); it runs on CUDA GPUs and, "
               "from bitsandbytes 0.48, on CPUs")


def quantization_kwargs(lora_cfg, dtype: str, keep: list[str] | None = None) -> dict:
    """`from_pretrained` keywords that load the base in 4-bit for QLoRA, the `keep` modules (a new head) left in
    the compute dtype; {} otherwise."""
    if not lora_cfg.enabled or lora_cfg.quantize == "none":
        return {}
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise UserError(MISSING_BNB) from None
    import torch
    from transformers import BitsAndBytesConfig

    from chatalign.models import torch_dtype

    compute = torch_dtype(dtype)
    device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                bnb_4bit_compute_dtype=compute, bnb_4bit_quant_storage=compute,
                                llm_int8_skip_modules=keep)
    return {"quantization_config": config, "device_map": {"": device}}


def prepare_4bit_for_training(model, gradient_checkpointing: bool = False):
    """A 4-bit base made ready for training adapters on it: norms and the head in the compute dtype, input
    gradients on (peft's `prepare_model_for_kbit_training`), and bitsandbytes' CPU inference packing off.

    bitsandbytes 0.50 repacks 4-bit weights for its CPU kernel at the first forward in eval mode without gradients
    (rollouts, evaluations); forwards after that go through a kernel with no backward, so every adapter gets no
    gradient at all (measured: all LoRA grads None after one eval pass), and layers narrower than its 64-value
    block fail to pack. Training models must keep the trainable layout."""
    from peft import prepare_model_for_kbit_training

    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing,
                                            gradient_checkpointing_kwargs={"use_reentrant": False})
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
    return model


def apply_lora(model, lora_cfg, task_type: str, gradient_checkpointing: bool = False):
    """The model with LoRA adapters (`task_type` CAUSAL_LM, or SEQ_CLS, which also trains the new score head)."""
    from peft import LoraConfig, get_peft_model

    if lora_cfg.quantize != "none":
        model = prepare_4bit_for_training(model, gradient_checkpointing)
    config = LoraConfig(r=lora_cfg.r, lora_alpha=lora_cfg.alpha, lora_dropout=lora_cfg.dropout,
                        target_modules=lora_cfg.target_modules, task_type=task_type)
    return get_peft_model(model, config)


def save_adapter(model, run_dir: str | Path) -> Path:
    """`adapter/`: the PEFT adapter (adapter_config.json, adapter_model.safetensors), written atomically."""
    import tempfile

    from chatalign.runs import replace_dir

    target = Path(run_dir) / ADAPTER_DIR
    tmp = Path(tempfile.mkdtemp(prefix=".adapter.", dir=target.parent))
    for config in model.peft_config.values():  # where the base is, from anywhere (the run's own path is relative)
        base = config.base_model_name_or_path
        if base and Path(base).exists():
            config.base_model_name_or_path = str(Path(base).resolve())
    model.save_pretrained(str(tmp), safe_serialization=True)
    replace_dir(tmp, target)
    return target


def finish_lora(model, lora_cfg, run_dir: str | Path, is_main: bool, load_full_precision_base,
                gathered: dict | None = None):
    """The trained adapter merged into whole weights (and `adapter/` written with `lora.save: both|adapter`); the merged
    model on the main rank, None on the others.

    `gathered`: the whole state of the LoRA-wrapped model (ZeRO-3 keeps only placeholders in `model`: every rank
    gathers, a collective, before calling this). Under ZeRO-3 and for QLoRA the base is reloaded in full precision
    (`load_full_precision_base()`) and the trained adapter weights copied onto it before the merge, so neither
    empty placeholders nor 4-bit rounding reach the saved model."""
    if not is_main:
        return None
    if gathered is None and lora_cfg.quantize == "none":
        if lora_cfg.writes_adapter:
            save_adapter(model, run_dir)
        return model.merge_and_unload()
    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

    fresh = get_peft_model(load_full_precision_base(), model.peft_config["default"])
    if gathered is not None:
        trained = {k: v for k, v in gathered.items() if "lora_" in k or "modules_to_save" in k}
        unexpected = fresh.load_state_dict(trained, strict=False).unexpected_keys
        if unexpected or not trained:
            raise RuntimeError(f"the gathered adapter does not fit the model: {unexpected[:3] or 'no LoRA weights'}")
    else:
        set_peft_model_state_dict(fresh, get_peft_model_state_dict(model))
    if lora_cfg.writes_adapter:
        save_adapter(fresh, run_dir)
    return fresh.merge_and_unload()
