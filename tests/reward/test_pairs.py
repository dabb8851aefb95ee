"""Pairs -> the rendered conversations read at their last token; the per-step plan of packed rows."""

from collections import Counter

import pytest

from chatalign.data_schemas import Preference
from chatalign.reward.pairs import PairExample, collate_pairs, encode_answers, encode_pairs, plan_rows


def pref(q, chosen, rejected, **kw):
    return Preference(prompt=[{"role": "user", "content": q}], chosen=chosen, rejected=rejected, **kw)


def test_sequence_is_the_whole_rendered_conversation(smol_tokenizer):
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    [ids] = encode_answers(smol_tokenizer, [prompt], ["Hello there."])
    tail = smol_tokenizer.convert_ids_to_tokens(ids[-5:])
    assert tail == ["Hello", "Ġthere", ".", "<|im_end|>", "Ċ"]  # read at the newline the template ends on
    conv = prompt + [{"role": "assistant", "content": "Hello there."}]
    assert ids == smol_tokenizer.apply_chat_template(conv, return_dict=True)["input_ids"]


def test_encode_pairs_margins_labels_and_bins(smol_tokenizer):
    prefs = [pref("2+2?", "4", "5", strength="better", chosen_safe=True, rejected_safe=True),
             pref("Hi", "Hello!", "Go away.")]
    examples, stats = encode_pairs(smol_tokenizer, prefs, ["a", "b"], [2 / 3, 0.0], max_seq_len=None)
    assert [e.margin for e in examples] == [2 / 3, 0.0]
    assert [e.strength for e in examples] == ["better", "none"]
    assert [e.safety_bin for e in examples] == ["both_safe", "unlabelled"]
    chosen, rejected = examples[0].chosen_ids, examples[0].rejected_ids
    assert chosen[:-3] == rejected[:-3] and chosen[-3] != rejected[-3]  # same prompt, 1-token answers
    assert chosen[-2:] == rejected[-2:] == smol_tokenizer.convert_tokens_to_ids(["<|im_end|>", "Ċ"])
    assert stats["pairs"] == 2 and stats["too_long"] == 0


def test_long_pairs_lose_old_rounds_then_are_left_out(smol_tokenizer):
    long_turn = "word " * 80
    multi = Preference(prompt=[{"role": "user", "content": long_turn}, {"role": "assistant", "content": "ok"},
                               {"role": "user", "content": "short?"}], chosen="yes", rejected="no")
    single = pref(long_turn, "yes", "no")
    examples, stats = encode_pairs(smol_tokenizer, [multi, single], ["s", "s"], [0.0, 0.0], max_seq_len=60)
    assert stats["too_long"] == 1 and len(examples) == 1
    text = smol_tokenizer.decode(examples[0].chosen_ids)
    assert "short?" in text and "word word" not in text and len(examples[0].chosen_ids) <= 60


def fake(n_c, n_r, margin=0.0):
    return PairExample(list(range(1, n_c + 1)), list(range(1, n_r + 1)), margin, "none", "s", "unlabelled")


def test_plan_has_whole_steps_of_pairs_and_respects_the_row_budget():
    examples = [fake(10 + i % 7, 5 + i % 5) for i in range(50)]
    rows, plan = plan_rows(examples, global_batch_pairs=16, row_tokens=64, epochs=2, seed=1)
    assert len(plan) == 8  # ceil(50 / 16) per epoch
    per_step = [sum(len(rows[r].pairs) for r in step) for step in plan]
    assert per_step == [16, 16, 16, 2] * 2
    assert all(r.n_tokens <= 64 for r in rows)
    seen = Counter(id(p) for r in rows for p in r.pairs)
    assert set(seen.values()) == {2}  # every pair once per epoch
    again_rows, again_plan = plan_rows(examples, 16, 64, 2, seed=1)
    assert again_plan == plan and [[id(p) for p in r.pairs] for r in again_rows] == \
        [[id(p) for p in r.pairs] for r in rows]


def test_collate_reads_each_sequence_at_its_last_token():
    a, b = fake(3, 2, 1.0), fake(4, 1, 0.5)
    rows, _ = plan_rows([a, b], 8, 64, 1, seed=0)
    batch = collate_pairs(rows)
    ids, pos, read = batch["input_ids"][0].tolist(), batch["position_ids"][0].tolist(), batch["read_index"].tolist()
    assert len(ids) == 10 and len(read) == 4
    for k in read:
        assert k + 1 == len(ids) or pos[k + 1] == 0  # the next position starts a new sequence
    pairs = [p for r in rows for p in r.pairs]
    assert batch["margin"].tolist() == [p.margin for p in pairs]
    assert [ids[k] for k in read] == [s[-1] for p in pairs for s in (p.chosen_ids, p.rejected_ids)]


def test_no_pairs_is_a_data_error():
    from chatalign.errors import DataError

    with pytest.raises(DataError):
        plan_rows([], 4, 64, 1, 0)
