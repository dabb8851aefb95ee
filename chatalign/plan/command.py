"""`chatalign plan --config RECIPE`: the memory plan of a stage recipe, or of every step of a pipeline."""

from __future__ import annotations

import json
from pathlib import Path

from chatalign.config import read_yaml
from chatalign.plan.pipeline import make_pipeline_plan, render_pipeline
from chatalign.plan.recipe import PlanInputs
from chatalign.plan.report import make_plan, parse_memory, render


def cmd_plan(config: str, overrides: list[str], gpus: int, gpu_memory: str, model_config: str | None,
             prompt_tokens: int, headroom: float, as_json: bool) -> int:
    if read_yaml(config).get("stage") == "pipeline":
        result = make_pipeline_plan(Path(config), overrides, gpus, parse_memory(gpu_memory), headroom,
                                    prompt_tokens, model_config)
        print(json.dumps(result, indent=2) if as_json else render_pipeline(result))
        return 0
    result = make_plan(PlanInputs(Path(config), overrides, prompt_tokens, model_config), gpus,
                       parse_memory(gpu_memory), headroom)
    result.pop("_output_shape")
    print(json.dumps(result, indent=2) if as_json else render(result))
    return 0
