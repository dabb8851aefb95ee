"""`chatalign plan` for a preference batch: the answer model(s) generating, one at a time, then the current
reward models scoring the held-out pairs."""

from __future__ import annotations

from chatalign.plan import spec_parts as parts
from chatalign.plan.phases import FrozenModel, StageSpec


def plan_spec(cfg, shape_of, prompt_tokens: int) -> StageSpec:
    g = cfg.generation
    names = list(dict.fromkeys(str(a.model or cfg.model.name) for a in cfg.answers))
    phases = [parts.generation(f"answers of {name}" if len(names) > 1 else "answers",
                               (FrozenModel("policy", shape_of(name)),), g.batch_size, prompt_tokens,
                               g.max_new_tokens, g) for name in names]
    rms = [FrozenModel(f"{kind} RM", shape_of(str(path)), "scalar")
           for kind, path in (("helpful", cfg.reward_models.helpful), ("safety", cfg.reward_models.safety)) if path]
    if rms:  # scored one after the other: the larger one counts
        biggest = max(rms, key=lambda m: m.shape.params("scalar"))
        phases.append(parts.generation("reward models score the held-out pairs", (biggest,), 1, prompt_tokens, 0))
    return StageSpec("prefs", tuple(phases), parts.weight_bytes(cfg.model), False)


def plan_changes(cfg) -> list[str]:
    return parts.smaller_batches(cfg, ["generation.batch_size"])
