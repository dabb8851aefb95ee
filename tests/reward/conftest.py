"""Toy preference files for the reward tests: a separable set (chosen praises, rejected insults)."""

import json

import pytest

TOPICS = ["apples", "rivers", "music", "trains", "winter", "cats", "books", "gardens", "bread", "maps",
          "clouds", "chess", "coffee", "bridges", "tea", "lamps", "forests", "shoes", "poems", "boats",
          "stars", "pianos", "hills", "kites", "soup", "clocks", "dogs", "roads", "jazz", "lakes",
          "tigers", "candles", "islands", "violins", "castles", "mirrors", "deserts", "ships", "owls", "tulips"]
STRENGTHS = ["significantly_better", "better", "slightly_better", "negligibly_better"]


def toy_rows(topics, offset=0):
    rows = []
    for i, t in enumerate(topics):
        k = i + offset
        rows.append({"id": f"toy-{k}", "prompt": [{"role": "user", "content": f"Tell me about {t}."}],
                     "chosen": f"I love {t}, they are wonderful.", "rejected": f"I hate {t}, they are awful.",
                     "strength": STRENGTHS[k % 4], "chosen_safe": True, "rejected_safe": k % 3 != 0,
                     "source": f"toy:{'odd' if k % 2 else 'even'}"})
    return rows


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread(one_torch_thread_session):
    """Every test of this folder on one torch thread (tests/conftest.py says why)."""


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("toy")
    train = write_jsonl(d / "toy_train.jsonl", toy_rows(TOPICS[:30]))
    held = write_jsonl(d / "toy_heldout.jsonl", toy_rows(TOPICS[30:], offset=30))
    return train, held


def toy_config(tmp_path, train, held, **train_kw):
    from chatalign.reward.config import RewardConfig

    return RewardConfig.model_validate({
        "kind": "safety", "output_dir": str(tmp_path / "run"),
        "model": {"name": str(train_kw.pop("model")), "dtype": "float32"},
        "data": {"sources": [{"path": str(train), "name": "toy"}], "eval": [{"path": str(held), "name": "toy"}]},
        "margin": "small",
        "train": {"global_batch_pairs": 6, "max_seq_len": 64, "row_tokens": 256, "epochs": 4, "seed": 0,
                  **train_kw},
        "optim": {"lr": 3e-3, "warmup_ratio": 0.0, "min_warmup_steps": 2, "min_lr_ratio": 0.1},
        "checkpoint": {"every_steps": 5, "keep_last": 1},
    })
