"""The `independent:` section of a stage recipe: evaluation on data/independent/ (sets written apart from the
training data, never used to train, select or stop), for the untouched base model, the model the stage started
from and the stage's model.

    independent:
      enabled: true
      data_dir: ../../data/independent      # relative to the recipe, like its other data files
      base_model: embedded                  # the pipeline's first model
      judge: {kind: rules}                  # or {kind: llm, llm: {backend: openai, base_url: ..., model: ...}}
      general: {max_new_tokens: 48}

A stage with more to evaluate (GAtt's dialogues) subclasses IndependentEvalConfig with its own section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from chatalign.config import ModelRef, RecipePath, RunPath, StrictModel
from chatalign.errors import ConfigError
from chatalign.judges.llm import LLMJudgeConfig

SUITES = ("general", "safety", "preferences", "gatt")


class JudgeConfig(StrictModel):
    kind: Literal["rules", "llm"] = Field("rules", description="rules: rule checks and the rule safety judge "
                                                               "(chatalign.judges); llm: also an LLM judge")
    llm: LLMJudgeConfig = LLMJudgeConfig()


class GeneralSuiteConfig(StrictModel):
    """NLL of well-written answers (general.jsonl) and system instructions kept (system_instructions.jsonl)."""

    # Defaults sized for the quickstart's 30 minutes on 2 CPU cores (measured: see the pipeline report's cost
    # table): the NLL is a mean over the ~4,000 answer tokens of the first 40 answers, the same for every model.
    max_answers: int | None = Field(40, gt=0, description="reference answers scored (the first N; None = all)")
    max_instructions: int | None = Field(None, gt=0, description="system-instruction prompts (None = all)")
    max_new_tokens: int = Field(48, gt=0, description="greedy tokens per system-instruction answer")
    batch_size: int = Field(64, gt=0, description="answers decoded together (on a CPU, more is cheaper per "
                                                  "answer)")
    batch_tokens: int = Field(4096, gt=16, description="tokens per packed NLL forward")


class SafetySuiteConfig(StrictModel):
    """Adversarial prompts answered safely (safety_adversarial.jsonl), false refusals (safety_benign.jsonl)."""

    max_adversarial: int | None = Field(None, gt=0, description="adversarial prompts (None = all)")
    max_benign: int | None = Field(None, gt=0, description="benign look-alike prompts (None = all)")
    max_new_tokens: int = Field(48, gt=0, description="greedy tokens per answer (a refusal shows early)")
    batch_size: int = Field(64, gt=0)


class PreferenceSuiteConfig(StrictModel):
    """Reward-model pair accuracy on pref_helpful.jsonl / pref_safety.jsonl, with trivial baselines beside it."""

    files: list[Literal["helpful", "safety"]] | None = Field(
        None, min_length=1, description="which independent files an RM is scored on (None: both, as Llama 2 "
        "scores each RM on both test sets; [helpful] for the helpfulness RM alone halves the cost)")
    max_pairs: int | None = Field(None, gt=0, description="pairs per file (None = all)")
    batch_tokens: int = Field(8192, gt=16)
    bow_vocabulary: int = Field(2000, gt=0, description="bag-of-words baseline: most frequent training words kept")


class IndependentEvalConfig(StrictModel):
    enabled: bool = False
    data_dir: RecipePath | None = Field(None, description="the independent sets (None: data/independent of this "
                                                          "checkout)")
    base_model: ModelRef = Field("embedded", description="the untouched base model of the comparison")
    suites: list[Literal["general", "safety", "preferences", "gatt"]] | None = Field(
        None, description="None: the stage's own (sft, rlhf, dpo: general; reward: preferences; safety: safety "
                          "and general)")
    judge: JudgeConfig = JudgeConfig()
    general: GeneralSuiteConfig = GeneralSuiteConfig()
    safety: SafetySuiteConfig = SafetySuiteConfig()
    preferences: PreferenceSuiteConfig = PreferenceSuiteConfig()
    cache_dir: RunPath | None = Field(None, description="results kept per model (None: .independent_cache beside "
                                                        "the run directory)")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"

    @model_validator(mode="after")
    def _unique_suites(self):
        if self.suites is not None and len(set(self.suites)) != len(self.suites):
            raise ValueError("suites: a suite is named twice")
        return self

    def suites_for(self, stage_default: list[str]) -> list[str]:
        return list(self.suites) if self.suites is not None else list(stage_default)

    def resolved_data_dir(self) -> Path:
        """The folder of the independent sets; a ConfigError naming the key when it is not there."""
        path = Path(self.data_dir) if self.data_dir else default_data_dir()
        if not path.is_dir():
            raise ConfigError(f"independent.data_dir: {path} is not a folder (the independent evaluation sets, "
                              "data/independent in a checkout of chatalign)")
        return path

    def data_file(self, name: str) -> Path:
        path = self.resolved_data_dir() / name
        if not path.is_file():
            raise ConfigError(f"independent.data_dir: {path.parent} has no {name}")
        return path


def default_data_dir() -> Path:
    """data/independent of the checkout this package runs from."""
    return Path(__file__).resolve().parents[2] / "data" / "independent"
