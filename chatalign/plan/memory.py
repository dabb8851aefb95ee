"""Per-GPU memory arithmetic for training and generation: pure functions on a model shape and its settings.

Every function returns `Term`s: bytes plus the formula with the numbers in it, so `chatalign plan` can show
its working. Where the byte counts come from:

- Model states under DeepSpeed mixed precision follow DeepSpeed's own estimator
  (`estimate_zero2_model_states_mem_needs`, `estimate_zero3_model_states_mem_needs`, deepspeed 0.19):
  per parameter 2 B of 16-bit weights, 2 B of 16-bit gradients, and 16 B on the optimizer side (fp32 master
  weights 4 + AdamW exp_avg 4 + exp_avg_sq 4 + the fp32 gradient the step reads 4). ZeRO-1 shards the
  optimizer side over the data-parallel ranks, ZeRO-2 also the 16-bit gradients, ZeRO-3 also the weights
  (Rajbhandari et al. 2020, fig. 1). ZeRO-3 adds the working set of the largest module, gathered whole with
  its gradient (4 B per parameter), and makes the fp32 gradient one sub-group (1e9 elements) at a time.
  DeepSpeed's ZeRO-3 estimator counts 18 B/param where we count 20: it leaves out the 16-bit gradient
  partition, which stage3.py keeps in `grad_partitions_flat_buffer` while the step runs. Optimizer offload
  moves the optimizer side and the gradient partitions to CPU memory; parameter offload (ZeRO-3 only) moves
  the weight partition too. DeepSpeed's default reduce bucket (5e8 elements) is counted for ZeRO >= 1.
- Without DeepSpeed (one process, our trainer's plain torch AdamW) nothing is sharded and the states keep the
  weights' dtype: weights, gradients, exp_avg, exp_avg_sq = 4 x dtype bytes per trained parameter.
- Activations per Llama decoder layer and token with activations of a bytes (bf16: 2), as autograd saves
  them with sdpa attention (no score matrix, no dropout), measured with saved-tensor hooks on transformers 5
  (tests/chatalign/test_memory_plan.py checks it to the byte): each of the two RMSNorms keeps its input in
  fp32 (4h), its fp32 1/rms (4), the normalised states (a h) and the weighted output the next linear reads
  (a h); attention keeps q, k, v and its output (a (2 q_dim + 2 kv_dim)) and an fp32 log-sum-exp per head;
  the MLP keeps gate, SiLU, up and down_proj inputs (4 a I). With gradient checkpointing per layer, only each
  layer's input (a h) is kept, plus one layer's full set while it is recomputed in backward.
- The LM head runs only on trained positions (`chatalign.training.lm_loss`): fp32 log-softmax saved per position
  (4 B x vocab) plus the chunk being computed (16-bit logits and their fp32 copy). PPO's policy forward also
  keeps the softmax and fp32 logits for the entropy (12 B x vocab per answer position).
- KV cache: batch x (prompt + new tokens) x layers x 2 (K and V) x kv_heads x head_dim x bytes.
- Frozen models (PPO's reference and reward models, `ppo.frozen_models`): whole 16-bit weights on every GPU
  when replicated; under ZeRO-3 inference the weights / N, plus the module being run gathered whole and
  DeepSpeed's prefetch bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

GiB = 1024**3
SUB_GROUP = 1_000_000_000  # DeepSpeed's default sub_group_size (elements): ZeRO-3 steps the optimizer per sub-group
LM_LOSS_CHUNK = 4096  # positions per LM-head chunk in chatalign.training.lm_loss.selected_token_nll
REDUCE_BUCKET = 500_000_000  # DeepSpeed's default reduce_bucket_size (elements); our config does not set it
PREFETCH_BUCKET = 50_000_000  # DeepSpeed's default stage3_prefetch_bucket_size (elements); not set either
LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class ModelShape:
    """What memory depends on in a Llama-style decoder (GQA, SwiGLU MLP, RMSNorm)."""

    name: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    tied: bool = False
    head_dim_override: int | None = None

    @property
    def head_dim(self) -> int:
        return self.head_dim_override or self.hidden // self.heads

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each linear module of one layer."""
        h, i = self.hidden, self.intermediate
        return {"q_proj": (h, self.q_dim), "k_proj": (h, self.kv_dim), "v_proj": (h, self.kv_dim),
                "o_proj": (self.q_dim, h), "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    def layer_params(self) -> int:
        return sum(a * b for a, b in self.linear_shapes().values()) + 2 * self.hidden  # + two RMSNorm weights

    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    def params(self, head: str = "lm") -> int:
        """All parameters; head "lm" (causal LM) or "scalar" (reward/value model: LM head -> h x 1 score)."""
        body = self.embedding_params() + self.layers * self.layer_params() + self.hidden  # + final norm
        if head == "scalar":
            return body + self.hidden
        return body + (0 if self.tied else self.vocab * self.hidden)

    def largest_module_params(self) -> int:
        return max(self.embedding_params(), *(a * b for a, b in self.linear_shapes().values()))

    def lora_params(self, r: int, modules: tuple[str, ...] = LINEAR_MODULES) -> int:
        shapes = self.linear_shapes()
        return self.layers * sum(r * (shapes[m][0] + shapes[m][1]) for m in modules if m in shapes)

    def top_layers_params(self, n: int, head: str = "lm") -> int:
        """Trainable parameters when only the top n layers, the final norm and the head train."""
        head_params = self.hidden if head == "scalar" else (0 if self.tied else self.vocab * self.hidden)
        return min(n, self.layers) * self.layer_params() + self.hidden + head_params

    def describe(self) -> str:
        return (f"{self.name}: {self.params() / 1e9:.2f}B params (h {self.hidden}, I {self.intermediate}, "
                f"{self.layers} layers, {self.heads} heads / {self.kv_heads} kv, head_dim {self.head_dim}, "
                f"vocab {self.vocab}{', tied' if self.tied else ''})")


def _llama2(name: str, h: int, i: int, layers: int, heads: int, kv: int) -> ModelShape:
    return ModelShape(name, h, i, layers, heads, kv, 32000)


# Published configs (config.json of meta-llama/Llama-2-*-hf; the -chat-hf models share them), so that a
# recipe naming a hub model can be planned offline.
KNOWN_SHAPES: dict[str, ModelShape] = {
    "llama2-7b": _llama2("Llama-2-7b", 4096, 11008, 32, 32, 32),
    "llama2-13b": _llama2("Llama-2-13b", 5120, 13824, 40, 40, 40),
    "llama2-70b": _llama2("Llama-2-70b", 8192, 28672, 80, 64, 8),
    "smollm2-135m": ModelShape("SmolLM2-135M", 576, 1536, 30, 9, 3, 49152, tied=True),
}
ALIASES = {
    **{f"meta-llama/llama-2-{s}-{v}": f"llama2-{s}" for s in ("7b", "13b", "70b") for v in ("hf", "chat-hf")},
    **{f"llama-2-{s}": f"llama2-{s}" for s in ("7b", "13b", "70b")},
    "huggingfacetb/smollm2-135m-instruct": "smollm2-135m", "huggingfacetb/smollm2-135m": "smollm2-135m",
}


def known_shape(name: str) -> ModelShape | None:
    key = name.strip().lower()
    return KNOWN_SHAPES.get(ALIASES.get(key, key))


@dataclass(frozen=True)
class Term:
    name: str
    bytes: float
    formula: str
    device: str = "gpu"  # "cpu": offloaded to host memory


@dataclass(frozen=True)
class Zero:
    """DeepSpeed settings of a training phase; enabled=False means one process with plain torch AdamW."""

    enabled: bool = True
    stage: int = 3
    offload_optimizer: bool = False
    offload_param: bool = False


def _n(x: float) -> str:
    return f"{int(x):,}"


def model_state_terms(label: str, total: int, trainable: int, largest: int, weight_bytes: int,
                      zero: Zero, world: int) -> list[Term]:
    """Weights, gradients and optimizer states of one trained model, per GPU."""
    wb = weight_bytes
    if not zero.enabled:
        return [Term(f"{label} weights", total * wb, f"{_n(total)} x {wb} B"),
                Term(f"{label} gradients", trainable * wb, f"{_n(trainable)} x {wb} B"),
                Term(f"{label} AdamW states", trainable * 2 * wb, f"{_n(trainable)} x 2 x {wb} B (exp_avg, exp_avg_sq)")]
    s = zero.stage
    w_div, g_div, o_div = (world if s >= 3 else 1), (world if s >= 2 else 1), (world if s >= 1 else 1)

    def per_gpu(n: int, b: int, div: int) -> tuple[float, str]:
        return n * b / div, f"{_n(n)} x {b} B" + (f" / {div}" if div > 1 else "")

    terms = []
    w, f = per_gpu(total, wb, w_div)
    terms.append(Term(f"{label} weights ({8 * wb}-bit)", w, f, "cpu" if zero.offload_param else "gpu"))
    g, f = per_gpu(trainable, wb, g_div)
    terms.append(Term(f"{label} gradients ({8 * wb}-bit)", g, f, "cpu" if zero.offload_optimizer else "gpu"))
    where = "cpu" if zero.offload_optimizer else "gpu"
    o, f = per_gpu(trainable, 12, o_div)
    terms.append(Term(f"{label} optimizer (fp32 master, m, v)", o, f, where))
    part = trainable / o_div
    if s >= 3 and part > SUB_GROUP:  # stage 3 makes the fp32 gradient one sub-group at a time
        terms.append(Term(f"{label} fp32 gradient (1 sub-group)", SUB_GROUP * 4, f"{_n(SUB_GROUP)} x 4 B", where))
    else:
        g32, f = per_gpu(trainable, 4, o_div)
        terms.append(Term(f"{label} fp32 gradient partition", g32, f, where))
    if s >= 3:
        terms.append(Term(f"{label} ZeRO-3 gathered module", largest * 2 * wb,
                          f"{_n(largest)} x 2 x {wb} B (largest module, weight + grad)"))
    if s >= 1:
        bucket = min(REDUCE_BUCKET, trainable)
        terms.append(Term(f"{label} ZeRO reduce bucket", bucket * wb, f"{_n(bucket)} x {wb} B"))
    return terms


NF4_BITS = 4.127  # 4-bit NF4 plus double-quantized block scales (Dettmers et al. 2023: 0.127 bits per parameter)


def qlora_state_terms(label: str, shape: ModelShape, head: str, adapter: int, weight_bytes: int) -> list[Term]:
    """QLoRA, one process (no ZeRO): the decoder's linear weights in 4-bit NF4, the embeddings, norms and head
    in the compute dtype, and the adapters trained with AdamW."""
    wb = weight_bytes
    linear = shape.layers * sum(a * b for a, b in shape.linear_shapes().values())
    rest = shape.params(head) - linear
    return [Term(f"{label} linear weights (4-bit NF4, frozen)", linear * NF4_BITS / 8,
                 f"{_n(linear)} x {NF4_BITS} bit"),
            Term(f"{label} embeddings, norms, head ({8 * wb}-bit, frozen)", rest * wb, f"{_n(rest)} x {wb} B"),
            Term(f"{label} LoRA adapters", adapter * wb, f"{_n(adapter)} x {wb} B"),
            Term(f"{label} gradients", adapter * wb, f"{_n(adapter)} x {wb} B"),
            Term(f"{label} AdamW states", adapter * 2 * wb, f"{_n(adapter)} x 2 x {wb} B (exp_avg, exp_avg_sq)")]


def frozen_weight_term(label: str, params: int, weight_bytes: int, shards: int = 1) -> Term:
    return Term(f"{label} weights (frozen)", params * weight_bytes / shards,
                f"{_n(params)} x {weight_bytes} B" + (f" / {shards}" if shards > 1 else ""))


def frozen_gathered_term(shape: ModelShape, weight_bytes: int) -> Term:
    """A ZeRO-3 inference forward of a partitioned frozen model: the submodule running, gathered whole, plus
    the parameters prefetched for the next ones (DeepSpeed's stage3_prefetch_bucket_size, which we leave at its
    default); each is freed after its submodule ran."""
    n = shape.largest_module_params()
    return Term("frozen models ZeRO-3 gathered module + prefetch", (n + PREFETCH_BUCKET) * weight_bytes,
                f"({_n(n)} largest module + {_n(PREFETCH_BUCKET)} prefetch) x {weight_bytes} B")


def layer_activation_bytes(shape: ModelShape, a: int) -> int:
    """Bytes autograd keeps per token for one decoder layer with activations of `a` bytes (module docstring)."""
    h = shape.hidden
    return 2 * (4 * h + 2 * a * h + 4) + a * (2 * shape.q_dim + 2 * shape.kv_dim + 4 * shape.intermediate) \
        + 4 * shape.heads


def model_activation_bytes(shape: ModelShape, a: int) -> int:
    """Per token outside the layers: input ids (int64), rotary cos and sin, the final norm."""
    return 8 + 2 * shape.head_dim * a + 4 * shape.hidden + 4 + a * shape.hidden


def activation_terms(label: str, shape: ModelShape, tokens: int, act_bytes: int, checkpointing: bool,
                     lm_positions: int = 0, logit_saved_bytes: int = 4, logit_chunk: int | None = LM_LOSS_CHUNK,
                     logit_transient_extra: int = 4) -> list[Term]:
    """Activations of one micro-batch of `tokens` tokens, and the LM head's logits on `lm_positions` of them.

    Logits: `logit_saved_bytes` per vocabulary entry stay saved for backward at every LM position (fp32
    log-softmax: 4; PPO with entropy: 12), and while a chunk of positions is computed its 16-bit logits plus
    `logit_transient_extra` bytes (the fp32 copy in the loss: 4) per entry exist on top.
    """
    a, h, L, V = act_bytes, shape.hidden, shape.layers, shape.vocab
    lb = layer_activation_bytes(shape, a)
    per = (f"(2x(4x{h} + 2x{a}x{h} + 4) + {a}x(2x{shape.q_dim} + 2x{shape.kv_dim} + 4x{shape.intermediate}) "
           f"+ 4x{shape.heads} = {lb:,} B)")
    if checkpointing:
        terms = [Term(f"{label} activations (checkpointed layer inputs)", L * tokens * h * a,
                      f"{L} layers x {_n(tokens)} tok x {h} x {a} B"),
                 Term(f"{label} activations (1 layer recomputed)", tokens * lb, f"{_n(tokens)} tok x {per}")]
    else:
        terms = [Term(f"{label} activations (no checkpointing)", L * tokens * lb,
                      f"{L} layers x {_n(tokens)} tok x {per}")]
    mb = model_activation_bytes(shape, a)
    terms.append(Term(f"{label} activations (ids, rotary, final norm)", tokens * mb,
                      f"{_n(tokens)} tok x (8 + 2x{shape.head_dim}x{a} + 4x{h} + 4 + {a}x{h} = {mb:,} B)"))
    if lm_positions:
        chunk = min(logit_chunk or lm_positions, lm_positions)
        terms.append(Term(f"{label} logits (saved)", lm_positions * (V * logit_saved_bytes + a * h),
                          f"{_n(lm_positions)} pos x ({V} x {logit_saved_bytes} + {h} x {a}) B"))
        terms.append(Term(f"{label} logits (chunk in flight)", chunk * V * (a + logit_transient_extra),
                          f"{_n(chunk)} pos x {V} x ({a}+{logit_transient_extra}) B"))
    return terms


def kv_cache_term(shape: ModelShape, batch: int, prompt: int, new: int, act_bytes: int) -> Term:
    n = batch * (prompt + new) * shape.layers * 2 * shape.kv_heads * shape.head_dim * act_bytes
    return Term("KV cache", n, f"{batch} x ({prompt}+{new}) tok x {shape.layers} layers x 2 x {shape.kv_heads} "
                               f"kv heads x {shape.head_dim} x {act_bytes} B")


def prefill_term(shape: ModelShape, batch: int, prompt: int, act_bytes: int) -> Term:
    """One layer's transient tensors while a batch of prompts is prefilled (no graph: layer by layer)."""
    e = 3 * shape.intermediate + 2 * shape.hidden + 2 * shape.kv_dim
    return Term("prefill working set (1 layer)", batch * prompt * e * act_bytes,
                f"{batch} x {prompt} tok x (3x{shape.intermediate} + 2x{shape.hidden} + 2x{shape.kv_dim}) x "
                f"{act_bytes} B")


def gib(n: float) -> float:
    return n / GiB
