"""Rejection-sampling selection and pooling on hand-made scores; resumable sample files."""

import json

from chatalign.rlhf.reward_fn import RewardBatch
from chatalign.rlhf.rs.selection import (
    complete_chunks,
    pool_best,
    pools_this_round,
    prompt_key,
    rescore_earlier,
    select_best,
    training_conversations,
)


def s(key, idx, r):
    return {"prompt_key": key, "sample_index": idx, "r_combined": r, "answer": f"{key}-{idx}"}


def test_select_best_keeps_the_highest_per_prompt_and_the_first_on_ties():
    best = select_best([s("a", 0, 0.2), s("a", 1, 0.9), s("a", 2, 0.5), s("b", 0, 0.3), s("b", 1, 0.3)])
    assert best["a"]["sample_index"] == 1
    assert best["b"]["sample_index"] == 0


def test_pool_best_across_rounds():
    this_round = {"a": s("a", 0, 0.6), "b": s("b", 0, 0.1)}
    earlier = {"a": s("a", 9, 0.6), "b": s("b", 9, 0.8), "c": s("c", 9, 0.2)}
    pooled = pool_best([this_round, earlier])
    assert pooled["a"]["sample_index"] == 0  # tie: this round's answer wins
    assert pooled["b"]["sample_index"] == 9  # an earlier round's answer was better
    assert pooled["c"]["sample_index"] == 9  # a prompt only an earlier round saw is kept


def test_pooling_starts_at_the_configured_round():
    assert [pools_this_round(n, 3) for n in (1, 2, 3, 4)] == [False, False, True, True]
    assert not pools_this_round(7, None)


def test_prompt_key_uses_id_else_a_message_hash():
    assert prompt_key({"id": "x1", "messages": []}) == "x1"
    a = prompt_key({"messages": [{"role": "user", "content": "hi"}]})
    b = prompt_key({"messages": [{"role": "user", "content": "hi!"}]})
    assert a.startswith("sha1:") and a != b


def test_rescore_earlier_uses_the_new_scores(tmp_path):
    f1, f2 = tmp_path / "r1.jsonl", tmp_path / "r2.jsonl"
    row = {"messages": [{"role": "user", "content": "q"}], "is_safety": False}
    f1.write_text(json.dumps({**row, "prompt_key": "q", "answer": "short", "r_combined": 0.9, "round": 1}) + "\n")
    f2.write_text(json.dumps({**row, "prompt_key": "q", "answer": "a longer one", "r_combined": 0.1, "round": 2}) + "\n")

    import torch

    def by_length(prompts, texts, ids):
        return RewardBatch(combined=torch.tensor([len(t) / 100 for t in texts]))

    best = rescore_earlier([(1, f1), (2, f2)], by_length)
    assert best["q"]["answer"] == "a longer one" and best["q"]["round"] == 2
    assert abs(best["q"]["r_combined"] - 0.12) < 1e-6


def test_complete_chunks_drops_a_cut_chunk(tmp_path):
    f = tmp_path / "samples.jsonl"
    rows = [{"chunk": 0, "i": 0}, {"chunk": 0, "i": 1}, {"chunk": 1, "i": 2}]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"chunk": 1, "i"')  # killed mid-write
    kept, done = complete_chunks(f, {0: 2, 1: 2})
    assert done == {0} and [r["i"] for r in kept] == [0, 1]
    assert len(f.read_text().splitlines()) == 2  # the file no longer holds the partial chunk


def test_training_conversations_append_the_answer():
    conv = training_conversations([{"prompt_key": "k", "messages": [{"role": "user", "content": "q"}],
                                    "answer": "a"}])
    assert conv == [{"id": "rs-k", "messages": [{"role": "user", "content": "q"},
                                                 {"role": "assistant", "content": "a"}]}]
