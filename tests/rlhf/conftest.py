"""Tiny models and prompt files for the RLHF tests (random-init Llamas sharing the embedded tokenizer)."""

import json

import pytest

from ..conftest import reward_model_from_causal_lm, tiny_llama

WORDS = ["cats", "dogs", "rain", "tea", "maps", "jazz", "owls", "boats", "pears", "hills", "lamps", "kites",
         "soup", "roads", "stars", "ships"]


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread(one_torch_thread_session):
    """Every test of this folder on one torch thread (tests/conftest.py says why)."""


def peaky_llama(tokenizer, seed: int = 0):
    """A 1-layer random Llama whose embeddings (tied to the LM head) are drawn wide (std 0.4), so that its
    next-token distribution is peaked enough for a chosen token to be sampled at all (about 10-15% of the
    time for the newline token here; a standard init samples from an almost uniform 49k vocabulary)."""
    import torch

    lm = tiny_llama(tokenizer, hidden=32, layers=1, heads=2, kv_heads=1, seed=seed)
    torch.manual_seed(seed)
    with torch.no_grad():
        lm.model.embed_tokens.weight.normal_(0, 0.4)
    return lm


def prompt_dicts(n: int = 16) -> list[dict]:
    return [{"id": f"p{i}", "messages": [{"role": "user", "content": f"Say something about {WORDS[i % 16]}."}],
             "is_safety": i % 4 == 3} for i in range(n)]


def token_fraction_reward(token_id: int):
    """A synthetic RewardFn: the fraction of answer tokens equal to `token_id`."""

    def reward(prompts, texts, response_ids):
        import torch

        from chatalign.rlhf.reward_fn import RewardBatch

        values = [sum(int(t) == token_id for t in ids) / max(1, len(ids)) for ids in response_ids]
        return RewardBatch(combined=torch.tensor(values, dtype=torch.float32))

    return reward


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def rlhf_files(tmp_path_factory, smol_tokenizer):
    """A policy model dir, two reward-model dirs and prompt files, all tiny."""
    from chatalign.models import save_hf_atomic
    from chatalign.reward.model import save_reward_model

    d = tmp_path_factory.mktemp("rlhf_inputs")
    save_hf_atomic(peaky_llama(smol_tokenizer), smol_tokenizer, d / "policy")
    for name, seed in (("rm_helpful", 1), ("rm_safety", 2)):
        rm = reward_model_from_causal_lm(tiny_llama(smol_tokenizer, hidden=32, layers=1, heads=2, kv_heads=1,
                                                    seed=seed), seed=seed)
        save_reward_model(rm, smol_tokenizer, d / name)
    write_jsonl(d / "prompts.jsonl", prompt_dicts(8))
    write_jsonl(d / "heldout.jsonl", [{**p, "id": f"h{i}", "check": {"type": "max_words", "value": 3}}
                                      for i, p in enumerate(prompt_dicts(4))])
    return d


def round_cfg(files, out, start, mode, **over):
    """A tiny round's config on `rlhf_files`; `over` merges into its top-level sections."""
    from chatalign.rlhf.config import RLHFRoundConfig

    data = {
        "output_dir": str(out), "mode": mode, "start": str(start), "model": {"dtype": "float32"},
        "reward": {"helpful": str(files / "rm_helpful"), "safety": str(files / "rm_safety")},
        "data": {"prompts": str(files / "prompts.jsonl"), "heldout": str(files / "heldout.jsonl")},
        "rs": {"num_samples": 3, "max_new_tokens": 6, "skip_unfinished": False, "batch_size": 8, "chunk_prompts": 4,
               "sweep_temperatures": [0.7], "sweep_prompts": 2,
               "train": {"seq_len": 128, "global_batch_rows": 2, "epochs": 1}, "optim": {"lr": 1e-3}},
        "ppo": {"iterations": 2, "batch_prompts": 4, "minibatch": 2, "max_new_tokens": 6, "gen_batch_size": 4,
                "score_batch_size": 4, "optim": {"lr": 1e-3}, "early_stopping": {"eval_every": 1}},
        "eval": {"max_new_tokens": 6},
    }
    for key, value in over.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return RLHFRoundConfig.model_validate(data)


def by_text(prompts, texts, ids):
    """A reward we can recompute by hand: a deterministic function of the answer text."""
    import torch

    from chatalign.rlhf.reward_fn import RewardBatch

    return RewardBatch(combined=torch.tensor([(sum(map(ord, t)) % 101) / 101 for t in texts]))


def rows(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
