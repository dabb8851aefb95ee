"""`chatalign prefs` with `generation.backend: vllm`: answer A from one model, answer B from another of the same
architecture, both drawn by one vLLM engine whose weights are swapped between them; the records say which model
drew each answer, and the rule annotator labels them as with the native engine."""

from __future__ import annotations

import json

from tests.vllm_backend.conftest import memory_share


def test_two_models_answer_through_one_engine(tmp_path, smol_tokenizer, monkeypatch):
    from chatalign.data_schemas import load_records
    from chatalign.models import save_hf_atomic
    from chatalign.prefs.config import PrefsConfig
    from chatalign.prefs.run import run_prefs
    from chatalign.rollout.vllm_engine import VLLMEngine
    from tests.conftest import tiny_llama

    for name, seed in (("a", 0), ("b", 1)):  # 64-wide heads: what vLLM's CPU attention takes
        save_hf_atomic(tiny_llama(smol_tokenizer, hidden=128, layers=1, heads=2, kv_heads=1, seed=seed),
                       smol_tokenizer, tmp_path / name)
    patterns = ["[A-Z]", "[0-9]", "[.,!?]", "^[a-z]", " the", "ing\\b"]  # kept by some random answers, not all
    rows = [{"id": f"p{k}", "messages": [{"role": "user", "content": f"Question {k}: say something."}],
             "check": {"type": "regex", "pattern": patterns[k % len(patterns)]}} for k in range(24)]
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = PrefsConfig.model_validate({
        "output_dir": str(tmp_path / "batch"), "model": {"name": str(tmp_path / "a"), "dtype": "float32"},
        "answers": [{"temperature": 1.0}, {"temperature": 1.0, "model": str(tmp_path / "b")}],
        "data": {"prompts": [str(tmp_path / "prompts.jsonl")]}, "heldout_fraction": 0.0,
        "generation": {"max_new_tokens": 8, "batch_size": 32, "backend": "vllm", "memory_share": memory_share(),
                       "max_model_len": 256}})
    starts, reloads = [], []
    real_start, real_reload = VLLMEngine._start, VLLMEngine.load_model_dir
    monkeypatch.setattr(VLLMEngine, "_start", lambda self: starts.append(self.model_path) or real_start(self))
    monkeypatch.setattr(VLLMEngine, "load_model_dir", lambda self, p: reloads.append(p) or real_reload(self, p))
    metrics = run_prefs(cfg, progress=False)
    assert starts == [str(tmp_path / "a")] and reloads == [str(tmp_path / "b")]
    comps = load_records(tmp_path / "batch" / "comparisons.jsonl", "comparison").records
    assert len(comps) == metrics["comparisons"] >= 20  # 8 sampled tokens from two random models: rarely equal
    assert all((c.answers[0].model, c.answers[1].model) == (str(tmp_path / "a"), str(tmp_path / "b"))
               for c in comps)
    assert metrics["labelled"] + sum(metrics["unlabelled"].values()) == len(comps) and metrics["labelled"] >= 1
