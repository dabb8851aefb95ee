"""vLLM under a launch of several ranks (torchrun, 2 CPU ranks over gloo, DeepSpeed ZeRO-3): an engine per rank
answers that rank's prompts; after an update of the partitioned policy it answers with the new weights, gathered
once per generation phase; a whole rs+ppo round runs so."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import requires_torchrun, torchrun_command
from tests.vllm_backend.conftest import memory_share, tiny_round_files

pytestmark = [pytest.mark.slow, pytest.mark.distributed]
WORKER = str(Path(__file__).with_name("ranks_worker.py"))


def launch(tmp_path: Path, *args: str, timeout: int = 500) -> list[dict]:
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "VLLM_LOGGING_LEVEL": "ERROR", "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.run(torchrun_command(WORKER, *args), capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    reports = [json.loads(f.read_text()) for f in sorted(tmp_path.glob("report-rank*.json"))]
    assert [r["rank"] for r in reports] == [0, 1]
    return reports


@requires_torchrun
def test_each_ranks_engine_answers_with_the_partitioned_policys_new_weights(tmp_path, embedded_dir):
    rank0, rank1 = launch(tmp_path, "sync", str(embedded_dir), str(memory_share(5)))
    assert len(rank0["starts"]) == len(rank1["starts"]) == 1  # an engine per rank, started together
    # each rank its share of 7 prompts (4 and 3); the last generation: rank 1 asked for none and stepped along
    assert rank0["generations"] == [4, 4, 4] and rank1["generations"] == [3, 3, 0]
    for rank in (rank0, rank1):
        assert rank["after"] != rank["before"]  # the change of the partitioned weights reached the engine
        same = sum(a == n for a, n in zip(rank["after"], rank["native"]))
        assert same >= len(rank["native"]) - 1, rank  # near-ties may flip one answer
        for a, n, lp_a, lp_n in zip(rank["after"], rank["native"], rank["after_logprobs"], rank["native_logprobs"]):
            if a == n:  # pi_old from this rank's gathered policy, as its own native engine reports it
                assert max(abs(x - y) for x, y in zip(lp_a, lp_n)) < 1e-4
    assert rank0["alone"] == rank0["after"][:len(rank0["alone"])] and rank1["alone"] == []


@requires_torchrun
def test_an_rs_ppo_round_under_zero3_draws_its_answers_from_an_engine_per_rank(tmp_path, smol_tokenizer):
    tiny_round_files(tmp_path, smol_tokenizer)
    zero3 = {"enabled": True, "zero_stage": 3}
    out = tmp_path / "round"
    (tmp_path / "cfg.json").write_text(json.dumps({
        "output_dir": str(out), "mode": "rs+ppo", "start": str(tmp_path / "policy"), "model": {"dtype": "float32"},
        "reward": {"helpful": str(tmp_path / "rm_helpful"), "safety": str(tmp_path / "rm_safety")},
        "data": {"prompts": str(tmp_path / "prompts.jsonl"), "heldout": str(tmp_path / "prompts.jsonl")},
        "rs": {"num_samples": 3, "max_new_tokens": 8, "skip_unfinished": False, "chunk_prompts": 3,
               "deepspeed": zero3, "train": {"seq_len": 128, "global_batch_rows": 2, "epochs": 1},
               "optim": {"lr": 1e-3}},
        "ppo": {"iterations": 2, "batch_prompts": 4, "minibatch": 2, "max_new_tokens": 6, "gen_batch_size": 4,
                "score_batch_size": 4, "optim": {"lr": 1e-3}, "deepspeed": zero3,
                "early_stopping": {"eval_every": 1, "max_prompts": 3}},
        "eval": {"max_new_tokens": 6, "samples_per_prompt": 1},
        "generation": {"backend": "vllm", "memory_share": memory_share(5), "max_model_len": 256}}))
    rank0, rank1 = launch(tmp_path, "round", str(tmp_path / "cfg.json"))
    assert rank0["ppo_iterations"] == rank1["ppo_iterations"] == 2
    # each rank: one engine for RS, one for PPO; RS: 2 chunks of 3 prompts split 2 + 1; PPO: its 3 held-out prompts
    # (2 + 1), then per iteration its batch of 4 (2 + 2) and the held-out prompts. The round's evaluation runs on
    # rank 0 alone, natively (a vLLM engine needs every rank of the launch)
    assert len(rank0["starts"]) == len(rank1["starts"]) == 2
    assert rank0["generations"] == [2, 2, 2, 2, 2, 2, 2], rank0
    assert rank1["generations"] == [1, 1, 1, 2, 1, 2, 1], rank1
    samples = [json.loads(x) for x in (out / "data" / "samples.jsonl").read_text().splitlines() if x.strip()]
    assert {(s["prompt_index"], s["sample_index"]) for s in samples} == {(p, k) for p in range(6) for k in range(3)}
    assert len({s["answer"] for s in samples}) > 6  # sampled, not one answer per prompt
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "finished" and (out / "model" / "config.json").is_file()
