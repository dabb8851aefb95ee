"""Recipe of `chatalign prefs`: sample two answers per prompt from the latest model(s) (two models, or one at
two temperatures, as the paper's annotators compared), and label them (Llama 2 section 3.2.1)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from chatalign.config import ModelRef, RecipePath, RunPath, StrictModel
from chatalign.judges.llm import LLMJudgeConfig
from chatalign.rollout.generation_config import GenerationConfig
from chatalign.tracking.config import Tracked
from chatalign.training.config import ModelConfig


class AnswerSettings(StrictModel):
    """How one of the two answers is drawn."""

    model: ModelRef | None = Field(None, description="another model or run directory for this answer (the paper "
                                                     "compared model variants); None: model.name")
    temperature: float = Field(0.7, ge=0, description="0 = greedy")
    top_p: float = Field(0.9, gt=0, le=1)


class PrefsData(StrictModel):
    prompts: list[RecipePath] = Field(..., min_length=1, description="Prompt files (a `check` rule per prompt "
                                                                     "lets the rule annotator label it)")
    max_prompts: int | None = Field(None, gt=0, description="per file (the first ones)")


class PrefsGeneration(GenerationConfig):
    """The backend (native or vLLM, as everywhere the pipeline generates) and the answers' length, batch, seed."""

    max_new_tokens: int = Field(128, gt=0)
    batch_size: int = Field(16, gt=0)
    seed: int = 0


class AnnotatorConfig(StrictModel):
    kind: Literal["rules", "judge", "people"] = Field("rules", description="rules: each prompt's `check`; judge: "
                                                      "an LLM judge; people: `chatalign annotate` on the comparisons")
    judge: LLMJudgeConfig | None = Field(None, description="kind judge: the judge model or endpoint")

    @model_validator(mode="after")
    def _judge_given(self):
        if self.kind == "judge" and self.judge is None:
            raise ValueError("annotator.kind judge needs annotator.judge (e.g. {backend: hf, model: embedded})")
        return self


class CurrentRewardModels(StrictModel):
    """The reward models in use before this batch: their accuracy on its held-out pairs is what the paper watched
    fall as the policy improved (sec. 3.2.1), the case for retraining them on the new batch."""

    helpful: ModelRef | None = Field(None, description="helpfulness reward run: scored on helpfulness pairs")
    safety: ModelRef | None = Field(None, description="safety reward run: scored on safety pairs")
    batch_tokens: int = Field(8192, gt=0)


class PrefsConfig(Tracked):
    stage: Literal["prefs"] = "prefs"
    output_dir: RunPath = "runs/prefs"
    model: ModelConfig = ModelConfig()
    answers: list[AnswerSettings] = Field(default_factory=lambda: [AnswerSettings(temperature=0.7),
                                                                   AnswerSettings(temperature=1.0)],
                                          min_length=2, max_length=2, description="answer A's and answer B's "
                                          "sampling (the paper varied temperature and model)")
    data: PrefsData
    generation: PrefsGeneration = PrefsGeneration()
    annotator: AnnotatorConfig = AnnotatorConfig()
    heldout_fraction: float = Field(0.2, ge=0, lt=1, description="labelled pairs kept out of preferences.jsonl, in "
                                    "preferences_heldout.jsonl: the RMs' accuracy on the batch before and after "
                                    "retraining on the rest")
    reward_models: CurrentRewardModels = CurrentRewardModels()
