"""RLHF round recipe schema. Defaults are the Llama 2 paper's (sec. 3.2.3): PPO batch 512 prompts, minibatch
64 with one gradient step each, clip 0.2, KL beta 0.01, AdamW (0.9, 0.95, eps 1e-5, wd 0.1), grad clip 1.0,
constant lr 1e-6; piecewise RM combination with the safety threshold 0.15; R~c = whiten(logit(R_c)).

Path rule (one rule, two kinds of paths):
- run directories written by earlier stages (`start`, `sft_run`, `reward.helpful`, `reward.safety`,
  `ppo.value_init` when it is a path) are relative to the current directory, like every `output_dir` that
  produced them: a recipe names them as `runs/quickstart/sft`, exactly as the SFT recipe wrote it;
- files shipped beside the recipe (`data.prompts`, `data.heldout`) are relative to the recipe file.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from chatalign.config import ModelRef, RecipePath, RunPath, StrictModel
from chatalign.evaluation.config import IndependentEvalConfig
from chatalign.rollout.generation_config import GenerationConfig
from chatalign.sft.config import SFTTrain
from chatalign.tracking.config import Tracked
from chatalign.training.config import (
    CheckpointConfig,
    DeepSpeedConfig,
    DistributedConfig,
    LoraConfig,
    OptimConfig,
    check_batch_rows,
    check_lora_deepspeed,
    refuse_adapter_only,
)

Mode = Literal["rs", "ppo", "rs+ppo"]


class RoundModel(StrictModel):
    """How the policy (and value model) are loaded; which weights is `start`'s business."""

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    trust_remote_code: bool = False
    chat_template: str | None = Field(None, description="None = the model's own; or chatml/llama2/zephyr")
    attn_implementation: str | None = None
    gradient_checkpointing: bool = False


class RewardModels(StrictModel):
    helpful: RunPath = Field(..., description="helpfulness RM: reward run directory or HF sequence-classification "
                                              "dir")
    safety: RunPath = Field(..., description="safety RM: reward run directory or HF sequence-classification dir")
    safety_threshold: float = Field(0.15, gt=0, lt=1, description="R_c = R_s if is_safety or R_s < this")
    batch_tokens: int = Field(8192, gt=16, description="tokens per packed scoring forward")
    max_seq_len: int | None = Field(None, gt=8)


class RoundData(StrictModel):
    prompts: RecipePath = Field(..., description="training prompts (Prompt records: messages, is_safety)")
    heldout: RecipePath | None = Field(None, description="held-out prompts: PPO early stopping and the win rates")
    format: str = "auto"
    max_prompts: int | None = Field(None, gt=0, description="use the first N training prompts")
    max_heldout: int | None = Field(64, gt=0, description="use the first N held-out prompts")


class RejectionSampling(StrictModel):
    sampler: ModelRef | None = Field(None, description="the model the K answers are drawn from: another model or "
                                     "run directory (the paper fine-tuned its smaller models on the 70B model's "
                                     "best answers); None: the policy itself")
    num_samples: int = Field(4, gt=0, description="K answers sampled per prompt")
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(512, gt=0)
    batch_size: int = Field(16, gt=0, description="rows decoded together")
    chunk_prompts: int = Field(64, gt=0, description="prompts sampled and scored per chunk (resume unit)")
    skip_unfinished: bool = Field(True, description="never select an answer cut at max_new_tokens (it would "
                                  "teach the model to end its turn mid-sentence)")
    pool_from_round: int | None = Field(3, gt=0, description="from this round on, pool with the best answers "
                                        "of all earlier rounds (paper: 3); None = never")
    sweep_temperatures: list[float] = Field(default_factory=list,
                                            description="extra temperatures sampled for the report only")
    sweep_prompts: int = Field(16, gt=0, description="prompts sampled at each sweep temperature")
    seed: int = 0
    train: SFTTrain = SFTTrain(epochs=1)
    optim: OptimConfig = OptimConfig(lr=1e-5, weight_decay=0.1, schedule="cosine", warmup_ratio=0.03)
    lora: LoraConfig = LoraConfig()
    deepspeed: DeepSpeedConfig = DeepSpeedConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()

    @model_validator(mode="after")
    def _check(self):
        if any(t <= 0 for t in self.sweep_temperatures):
            raise ValueError("rs.sweep_temperatures must all be > 0")
        check_batch_rows(self.train, "rs.train")
        refuse_adapter_only(self.lora, "the round reads the trained model/ back")
        return self


class PPOOptim(StrictModel):
    lr: float = Field(1e-6, gt=0, description="policy lr, constant (paper: 1e-6)")
    value_lr: float | None = Field(None, gt=0, description="value-model lr; None = lr")
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = Field(1e-5, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    grad_clip: float | None = Field(1.0, gt=0)


class ValueModel(StrictModel):
    init: str = Field("helpful", description="`helpful`, `safety` (that RM's weights) or a path to an RM")
    trainable_layers: int | None = Field(None, gt=0, description="train only the top N layers (+ norm, head)")
    warmup_iterations: int = Field(0, ge=0, description="the first N iterations train the value model only (the "
                                   "policy is not updated): a value model started from a reward model begins far "
                                   "from the returns, and its first advantages are mostly noise")


class EarlyStopping(StrictModel):
    eval_every: int = Field(5, gt=0, description="evaluate the held-out combined reward every N iterations")
    patience: int = Field(3, gt=0, description="stop after this many evaluations without improvement")
    min_delta: float = Field(0.0, ge=0)
    max_new_tokens: int | None = Field(None, gt=0, description="None = ppo.max_new_tokens")
    temperature: float = Field(0.0, ge=0, description="0 = greedy answers; > 0: sampled answers, the same seed "
                               "at every evaluation (paired draws)")
    samples_per_prompt: int = Field(1, gt=0, description="answers per held-out prompt (> 1 needs temperature > "
                                    "0): the mean over several samples is what PPO optimizes, with less noise")
    restore_best: bool = Field(True, description="the round's model is the best evaluated policy")
    max_prompts: int | None = Field(None, gt=0, description="evaluate on the first N held-out prompts (None = "
                                    "all): the round's final evaluation can then use more prompts, including "
                                    "some that never chose a policy")


class Guards(StrictModel):
    max_kl: float | None = Field(50.0, gt=0, description="stop if the batch mean KL per answer (nats) exceeds it")
    max_abs_reward: float | None = Field(
        12.0, gt=0, description="stop if the batch mean |logit R_c| (the raw RM score) exceeds it: reward models "
        "saturated or hacked (logit clamps at 13.8)")


class PPOSection(StrictModel):
    iterations: int = Field(200, gt=0, description="most iterations (paper: 200-400, with early stopping)")
    batch_prompts: int = Field(512, gt=0)
    minibatch: int = Field(64, gt=0, description="answers per gradient step")
    micro_batch: int | None = Field(None, gt=0, description="answers per forward (accumulated); None = minibatch")
    epochs: int = Field(1, gt=0, description="passes over each batch (paper: 1: one step per minibatch)")
    max_new_tokens: int = Field(512, gt=0)
    temperature: float = Field(1.0, gt=0, description="1.0 keeps sampling on-policy (log-probs are at T=1)")
    top_p: float = Field(1.0, gt=0, le=1)
    gen_batch_size: int = Field(32, gt=0)
    score_batch_size: int = Field(16, gt=0, description="answers per reference/value forward")
    beta: float = Field(0.01, ge=0, description="KL penalty (paper: 0.01 for 7B/13B, 0.005 for 34B/70B)")
    kl_estimator: Literal["k1", "k3", "abs", "mse"] = Field(
        "k1", description="per-token KL estimator in the reward (see ppo_math.kl_per_token); k1 is the paper's")
    clip: float = Field(0.2, gt=0)
    value_clip: float | None = Field(0.2, gt=0)
    gamma: float = Field(1.0, ge=0, le=1)
    lam: float = Field(0.95, ge=0, le=1)
    whiten_advantages: bool = True
    reward_transform: Literal["whiten_logit", "logit", "raw"] = Field(
        "whiten_logit", description="R~c = whiten(logit(R_c)) (paper); `raw` uses R_c in [0, 1] as is")
    seed: int = 0
    optim: PPOOptim = PPOOptim()
    lora: LoraConfig = LoraConfig(dropout=0.0)
    value: ValueModel = ValueModel()
    deepspeed: DeepSpeedConfig = Field(
        DeepSpeedConfig(), description="policy and value each trained by a DeepSpeed engine (ZeRO 0-3, offload); "
        "on by itself under several ranks. The reference and reward models: see frozen_models")
    frozen_models: Literal["replicated", "zero3"] = Field(
        "replicated", description="where PPO's frozen networks (the reference policy and the two reward models) "
        "live under several ranks: `replicated`, a whole copy on every rank; `zero3`, partitioned over the ranks "
        "by DeepSpeed ZeRO-3 inference (1/N of the weights per rank, gathered layer by layer in each forward: "
        "less memory, one all-gather per layer). With ppo.lora the reference is the policy itself with its "
        "adapter disabled (partitioned with the policy under ZeRO-3), so `zero3` partitions the reward models only. One process keeps them whole; "
        "rejection sampling and the round's evaluation use whole reward models either way")
    early_stopping: EarlyStopping = EarlyStopping()
    guards: Guards = Guards()
    checkpoint_every: int = Field(1, gt=0, description="iterations between checkpoints")
    keep_checkpoints: int = Field(2, gt=0)

    @model_validator(mode="after")
    def _check(self):
        check_lora_deepspeed(self.lora, self.deepspeed)  # QLoRA: one process, no DeepSpeed
        refuse_adapter_only(self.lora, "the round reads the trained model/ back")
        if self.batch_prompts % self.minibatch:
            raise ValueError(f"ppo.batch_prompts ({self.batch_prompts}) must be a multiple of ppo.minibatch "
                             f"({self.minibatch})")
        if self.micro_batch and self.minibatch % self.micro_batch:
            raise ValueError(f"ppo.minibatch ({self.minibatch}) must be a multiple of ppo.micro_batch "
                             f"({self.micro_batch})")
        es = self.early_stopping
        if es.samples_per_prompt > 1 and es.temperature == 0:
            raise ValueError("ppo.early_stopping.samples_per_prompt > 1 needs ppo.early_stopping.temperature > 0 "
                             "(greedy answers would all be the same)")
        return self


class RoundEval(StrictModel):
    max_new_tokens: int | None = Field(None, gt=0, description="None = the PPO (else RS) max_new_tokens")
    batch_size: int = Field(16, gt=0)
    temperature: float = Field(0.0, ge=0, description="0 = greedy answers; > 0: sampled with a fixed seed, the "
                               "same draws for every model compared")
    samples_per_prompt: int = Field(1, gt=0, description="answers per held-out prompt (> 1 needs temperature > "
                                    "0); win rates compare each prompt's mean R_c")
    seed: int = 0
    compare_sft: bool = True
    compare_previous: bool = True

    @model_validator(mode="after")
    def _check(self):
        if self.samples_per_prompt > 1 and self.temperature == 0:
            raise ValueError("eval.samples_per_prompt > 1 needs eval.temperature > 0 (greedy answers would all "
                             "be the same)")
        return self


class RLHFRoundConfig(Tracked):
    stage: Literal["rlhf"] = "rlhf"
    output_dir: RunPath = "runs/rlhf_round"
    mode: Mode = "rs+ppo"
    round: int | None = Field(None, gt=0, description="None = the start run's round + 1 (1 from an SFT run)")
    start: RunPath = Field(..., description="policy to start from: previous round's run dir, an SFT run dir, "
                                            "an HF model dir or `embedded`")
    sft_run: RunPath | None = Field(None, description="SFT baseline of the win rate; None = found in the lineage")
    model: RoundModel = RoundModel()
    reward: RewardModels
    data: RoundData
    rs: RejectionSampling = RejectionSampling()
    ppo: PPOSection = PPOSection()
    eval: RoundEval = RoundEval()
    generation: GenerationConfig = GenerationConfig()
    independent: IndependentEvalConfig = IndependentEvalConfig()
    distributed: DistributedConfig = DistributedConfig()
    allow_changed_inputs: bool = False

    @model_validator(mode="after")
    def _check_generation(self):
        if self.generation.backend == "vllm" and "ppo" in self.mode and self.ppo.lora.quantize != "none":
            raise ValueError("generation.backend: vllm takes the PPO policy's weights in memory, which a 4-bit "
                             "(QLoRA) policy cannot hand over: ppo.lora.quantize: none, or generation.backend: native")
        return self

    @property
    def eval_max_new_tokens(self) -> int:
        if self.eval.max_new_tokens:
            return self.eval.max_new_tokens
        return self.ppo.max_new_tokens if "ppo" in self.mode else self.rs.max_new_tokens
