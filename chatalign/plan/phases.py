"""A stage's memory plan: its phases (train, generation), their per-GPU totals, the fit, and what to change.

Pure: a `StageSpec` (built from a recipe by `chatalign.plan.recipe`) in, `Phase`s of `Term`s out.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from chatalign.plan.memory import (
    LINEAR_MODULES,
    LM_LOSS_CHUNK,
    ModelShape,
    Term,
    Zero,
    activation_terms,
    frozen_gathered_term,
    frozen_weight_term,
    kv_cache_term,
    model_state_terms,
    prefill_term,
    qlora_state_terms,
)

MAX_GPUS = 4096


@dataclass(frozen=True)
class TrainedModel:
    label: str
    shape: ModelShape
    head: str = "lm"  # "lm" or "scalar"
    lora_r: int | None = None
    lora_modules: tuple[str, ...] = LINEAR_MODULES
    trainable_layers: int | None = None
    base_4bit: bool = False  # QLoRA: the frozen linear weights in 4-bit NF4
    # activations of one micro-batch: items x tokens each, of which `lm_positions` go through the LM head
    micro: int = 1
    tokens_per_item: int = 4096
    lm_positions_per_item: int = 0
    logit_saved_bytes: int = 4
    logit_chunked: bool = True
    logit_transient_extra: int = 4

    def total_params(self) -> int:
        lora = self.shape.lora_params(self.lora_r, self.lora_modules) if self.lora_r else 0
        return self.shape.params(self.head) + lora

    def trainable_params(self) -> int:
        if self.lora_r:
            return self.shape.lora_params(self.lora_r, self.lora_modules)
        if self.trainable_layers:
            return self.shape.top_layers_params(self.trainable_layers, self.head)
        return self.shape.params(self.head)


@dataclass(frozen=True)
class FrozenModel:
    label: str
    shape: ModelShape
    head: str = "lm"


@dataclass(frozen=True)
class Generation:
    batch: int
    prompt: int
    new: int
    engine_share: float | None = None  # vLLM (generation.backend: vllm): the share of the GPU its engine reserves


@dataclass(frozen=True)
class PhaseSpec:
    name: str
    distributed: bool  # True: one rank per GPU (data parallel, DeepSpeed); False: one process on one GPU
    trained: tuple[TrainedModel, ...] = ()
    frozen: tuple[FrozenModel, ...] = ()
    generation: Generation | None = None
    train_step: bool = True  # False: trained models are resident (PPO generation) but no activations
    zero: Zero = Zero(enabled=False)
    frozen_sharded: bool = False  # frozen models under ZeRO-3 inference (sharded) instead of replicated


@dataclass(frozen=True)
class StageSpec:
    stage: str
    phases: tuple[PhaseSpec, ...]
    weight_bytes: int = 2
    checkpointing: bool = False
    notes: tuple[str, ...] = ()
    output: ModelShape | None = None  # the shape of the model the stage writes (a later stage may read it)
    gpu_memory: float = 0.0  # bytes per GPU: what a vLLM engine's share is a share of (set by the plan)


@dataclass
class Phase:
    name: str
    ranks: int
    terms: list[Term] = field(default_factory=list)

    @property
    def gpu_bytes(self) -> float:
        return sum(t.bytes for t in self.terms if t.device == "gpu")

    @property
    def cpu_bytes(self) -> float:
        return sum(t.bytes for t in self.terms if t.device == "cpu")


def phase_terms(spec: StageSpec, ph: PhaseSpec, gpus: int) -> Phase:
    world = gpus if ph.distributed else 1
    # our trainer uses DeepSpeed when the recipe enables it or when launched on several ranks
    zero = replace(ph.zero, enabled=True) if ph.distributed and (ph.zero.enabled or world > 1) else Zero(False)
    wb = spec.weight_bytes
    out = Phase(ph.name, world)
    for m in ph.trained:
        if m.base_4bit:
            out.terms += qlora_state_terms(m.label, m.shape, m.head, m.trainable_params(), wb)
            continue
        out.terms += model_state_terms(m.label, m.total_params(), m.trainable_params(),
                                       m.shape.largest_module_params(), wb, zero, world)
    # ZeRO-3 inference engines of their own: partitioned whatever the trained models' ZeRO stage, given ranks
    shards = world if ph.frozen_sharded and world > 1 else 1
    for f in ph.frozen:
        out.terms.append(frozen_weight_term(f.label, f.shape.params(f.head), wb, shards))
    if ph.frozen and shards > 1:  # one frozen model runs at a time: the largest one's working set counts
        out.terms.append(frozen_gathered_term(max((f.shape for f in ph.frozen),
                                                  key=lambda s: s.largest_module_params()), wb))
    if ph.trained and ph.train_step:
        # trained models run backward one after the other (PPO: policy, then value): the largest set counts
        sets = [activation_terms(m.label, m.shape, m.micro * m.tokens_per_item, wb, spec.checkpointing,
                                 m.micro * m.lm_positions_per_item, m.logit_saved_bytes,
                                 LM_LOSS_CHUNK if m.logit_chunked else None, m.logit_transient_extra)
                for m in ph.trained]
        out.terms += max(sets, key=lambda ts: sum(t.bytes for t in ts))
    if ph.generation is not None:
        g = ph.generation
        policy = ph.trained[0].shape if ph.trained else ph.frozen[0].shape
        if ph.trained and zero.enabled and zero.stage == 3:
            n = ph.trained[0].total_params()
            out.terms.append(Term("policy gathered for generation", n * wb, f"{n:,} x {wb} B (whole 16-bit copy)"))
        if g.engine_share is not None and spec.gpu_memory:
            # vLLM takes its share of the whole GPU up front (its weight copy, activations, the rest KV cache)
            out.terms.append(Term("vLLM engine (generation.memory_share)", g.engine_share * spec.gpu_memory,
                                  f"{g.engine_share:g} x {spec.gpu_memory / 2**30:.0f} GiB: its weights and KV cache"))
        else:
            out.terms.append(kv_cache_term(policy, g.batch, g.prompt, g.new, wb))
            out.terms.append(prefill_term(policy, g.batch, g.prompt, wb))
    return out


def plan(spec: StageSpec, gpus: int) -> list[Phase]:
    return [phase_terms(spec, ph, gpus) for ph in spec.phases]


def peak(phases: list[Phase]) -> float:
    return max(p.gpu_bytes for p in phases)


def fits(spec: StageSpec, gpus: int, usable: float) -> bool:
    return peak(plan(spec, gpus)) <= usable


def min_gpus(spec: StageSpec, usable: float, limit: int = MAX_GPUS) -> int | None:
    """Fewest GPUs on which every phase fits, or None (a one-process phase does not fit, or nothing shards)."""
    if fits(spec, 1, usable):
        return 1
    if not fits(spec, limit, usable):
        return None
    # from 2 GPUs on DeepSpeed is always on and per-GPU memory never grows with more GPUs: bisect
    # (1 -> 2 may grow: one process without DeepSpeed keeps 16-bit AdamW states, DeepSpeed fp32 ones)
    lo, hi = 2, limit
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(spec, mid, usable):
            hi = mid
        else:
            lo = mid + 1
    return lo


def advice(changes: list[tuple[str, StageSpec]], gpus: int, usable: float) -> list[dict]:
    """Each changed spec with its peak on `gpus` GPUs, whether that fits, and its own minimum GPU count."""
    rows = []
    for what, changed in changes:
        p = peak(plan(changed, gpus))
        rows.append({"change": what, "peak_bytes": p, "fits": p <= usable, "min_gpus": min_gpus(changed, usable)})
    return rows
