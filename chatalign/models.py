"""Loading and saving Hugging Face models: safetensors only, no remote code unless a recipe asks for it."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from chatalign.data_schemas.file_output import temp_dir_in
from chatalign.embedded import embedded_model_dir, is_embedded
from chatalign.errors import UserError
from chatalign.runs import holds_adapter_only, replace_dir
from chatalign.training.packed_attention import default_attention

log = logging.getLogger(__name__)


# `owner/name` (or a legacy bare `name`): each part starts with a letter, digit or `_`, as the Hub's ids do
HUB_ID = re.compile(r"^\w[\w.-]*(/\w[\w.-]*)?$")
HUB_RULE = "a Hub id is owner/name (letters, digits, _ . -) whose owner is not a folder here"


def is_hub_id(name: str) -> bool:
    """Whether the Hub is asked for `name`: shaped like a Hub id, and neither it nor its owner part exists
    here (`runs/nope` beside a `runs/` folder is a mistyped run directory, not the Hub's user `runs`)."""
    if not HUB_ID.match(name) or Path(name).exists():
        return False
    return "/" not in name or not Path(name.split("/")[0]).exists()


def resolve_model_path(name: str | os.PathLike | None, key: str | None = None) -> str:
    """`embedded`/None -> the cached embedded model; a run directory -> its `model/`; a Hub id as given; a path
    that does not exist fails at once, offline (`key`, the config key that named it, leads the message)."""
    if name is None or is_embedded(str(name)):
        return str(embedded_model_dir())
    where = f"{key}: " if key else "model "
    p = Path(name)
    if (p / "manifest.json").is_file() and (p / "model" / "config.json").is_file():
        return str(p / "model")
    if holds_adapter_only(p):
        raise UserError(f"{where}{name}: this run kept its LoRA adapter only (lora.save: adapter), no model/ to "
                        "load here: train it with lora.save: both to chain it into another stage, or load "
                        "adapter/ with peft")
    if p.exists():
        if not (p / "config.json").is_file():
            raise UserError(f"{where}{name}: no config.json in that directory (not a Hugging Face model?)")
        return str(p)
    if not is_hub_id(str(name)):
        raise UserError(f"{where}{name}: no such directory (and not read as a Hub id: {HUB_RULE})")
    return str(name)  # a hub id; works only where the hub is reachable


def torch_dtype(name: str):
    import torch

    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return table[name]


def load_tokenizer(name: str | os.PathLike | None, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    path = resolve_model_path(name)
    if trust_remote_code:
        log.warning("trust_remote_code is on: code from %s will run on this machine", path)
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except OSError as exc:
        raise UserError(f"cannot load tokenizer from {path}: {exc}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(name: str | os.PathLike | None, dtype: str = "auto", trust_remote_code: bool = False,
                   attn_implementation: str | None = None, **kwargs: Any):
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(name)
    if trust_remote_code:
        log.warning("trust_remote_code is on: code from %s will run on this machine", path)
    try:
        return AutoModelForCausalLM.from_pretrained(
            path, dtype=torch_dtype(dtype), trust_remote_code=trust_remote_code,
            use_safetensors=True, attn_implementation=default_attention(attn_implementation), **kwargs)
    except OSError as exc:
        raise UserError(f"cannot load model from {path}: {exc}") from None


def save_hf_atomic(model, tokenizer, target: str | os.PathLike, state_dict: dict | None = None) -> Path:
    """Write an HF directory (safetensors) to a temp dir beside `target`, then rename it into place."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(temp_dir_in(target.parent, f".{target.name}-"))
    try:
        model.save_pretrained(str(tmp), safe_serialization=True, state_dict=state_dict)
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        replace_dir(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
