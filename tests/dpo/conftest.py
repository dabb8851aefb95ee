"""Toy preference files for the DPO tests (a separable set: chosen praises, rejected insults) and a recipe."""

import json

import pytest

TOPICS = ["apples", "rivers", "music", "trains", "winter", "cats", "books", "gardens", "bread", "maps",
          "clouds", "chess", "coffee", "bridges", "tea", "lamps", "forests", "shoes", "poems", "boats",
          "stars", "pianos", "hills", "kites", "soup", "clocks", "dogs", "roads", "jazz", "lakes",
          "tigers", "candles", "islands", "violins", "castles", "mirrors", "deserts", "ships", "owls", "tulips"]
STRENGTHS = ["significantly_better", "better", "slightly_better", "negligibly_better"]


def toy_rows(topics, offset=0):
    return [{"id": f"toy-{i + offset}", "prompt": [{"role": "user", "content": f"Tell me about {t}."}],
             "chosen": f"I love {t}, they are wonderful.", "rejected": f"I hate {t}, they are awful.",
             "strength": STRENGTHS[(i + offset) % 4], "chosen_safe": True, "rejected_safe": True,
             "source": f"toy:{'odd' if (i + offset) % 2 else 'even'}"} for i, t in enumerate(topics)]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread(one_torch_thread_session):
    """Every test of this folder on one torch thread (tests/conftest.py says why)."""


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("toy")
    return (write_jsonl(d / "toy_train.jsonl", toy_rows(TOPICS[:24])),
            write_jsonl(d / "toy_heldout.jsonl", toy_rows(TOPICS[24:], offset=24)))


def toy_recipe(out, train, held, model, **train_kw) -> dict:
    return {"stage": "dpo", "output_dir": str(out),
            "model": {"name": str(model), "dtype": "float32"},
            "data": {"sources": [{"path": str(train), "name": "toy"}], "eval": [{"path": str(held), "name": "toy"}]},
            "dpo": {"beta": 0.5},
            "train": {"global_batch_pairs": 6, "max_seq_len": 64, "row_tokens": 256, "epochs": 2, "seed": 0,
                      **train_kw},
            "optim": {"lr": 3e-3, "warmup_ratio": 0.0, "min_warmup_steps": 0, "schedule": "constant"},
            "checkpoint": {"every_steps": 2, "keep_last": 1},
            "eval": {"batch_tokens": 512}}


def toy_config(out, train, held, model, **train_kw):
    from chatalign.dpo.config import DPOConfig

    return DPOConfig.model_validate(toy_recipe(out, train, held, model, **train_kw))
