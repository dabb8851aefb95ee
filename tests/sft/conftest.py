"""Tiny SFT data and the recipe that trains on it (a tiny random model), shared by the SFT tests."""

import json

import pytest
import yaml


def conversations(n=12):
    rows = []
    for i in range(n):
        msgs = [{"role": "user", "content": f"What is {i} plus {i}?"},
                {"role": "assistant", "content": f"The answer is {2 * i}."}]
        if i % 3 == 0:
            msgs += [{"role": "user", "content": "And times two?"},
                     {"role": "assistant", "content": f"The answer is {4 * i}."}]
        rows.append({"id": f"c{i}", "messages": msgs})
    return rows


def heldout():
    return [{"id": f"h{i}", "messages": [{"role": "user", "content": f"What is {i} plus 1?"}],
             "reference": f"The answer is {i + 1}.", "check": {"type": "number", "value": i + 1},
             "tags": ["arithmetic"]} for i in range(20, 24)]


@pytest.fixture()
def recipe(tmp_path, tiny_model_dir):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in conversations()))
    (data / "heldout.jsonl").write_text("".join(json.dumps(r) + "\n" for r in heldout()))
    cfg = {"stage": "sft", "output_dir": str(tmp_path / "runs" / "sft"),
           "model": {"name": str(tiny_model_dir), "dtype": "float32"},
           "data": {"train": "data/train.jsonl", "eval": "data/heldout.jsonl"},
           "train": {"epochs": 2, "seq_len": 128, "global_batch_rows": 2, "seed": 0},
           "optim": {"lr": 1e-3}, "checkpoint": {"every_steps": 2},
           "eval": {"max_new_tokens": 8, "batch_size": 4}}
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path
