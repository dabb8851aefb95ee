"""DPO pairs: each side is the prompt plus its answer cut after the end-of-turn token, the answer span starts
where the answer does, and a packed batch labels exactly the answer tokens of each sequence."""

import torch

from chatalign.dpo.pairs import DPOPair, collate_dpo, encode_sides, scoring_rows
from chatalign.reward.pairs import PairRow
from chatalign.text.packing import IGNORE


def test_answer_span_is_the_answer_and_its_end_of_turn(smol_tokenizer):
    tok = smol_tokenizer
    prompt = [{"role": "user", "content": "Name a fruit."}]
    (ids, start), = encode_sides(tok, [prompt], ["An apple."], None)
    assert tok.decode(ids[start:]) == "An apple.<|im_end|>"
    assert tok.decode(ids[:start]).endswith("<|im_start|>assistant\n")


def test_long_sides_lose_old_rounds_then_are_left_out(smol_tokenizer):
    tok = smol_tokenizer
    long_round = [{"role": "user", "content": "word " * 60}, {"role": "assistant", "content": "ok " * 60}]
    prompt = [*long_round, {"role": "user", "content": "Name a fruit."}]
    (ids, start), = encode_sides(tok, [prompt], ["An apple."], 40)
    assert len(ids) <= 40 and tok.decode(ids[start:]) == "An apple.<|im_end|>" and "word" not in tok.decode(ids)
    assert encode_sides(tok, [[{"role": "user", "content": "word " * 60}]], ["An apple."], 40) == [None]


def test_collate_labels_only_answer_tokens_per_sequence():
    # chosen [10, 11, 12, 13] answer from index 2; rejected [10, 11, 14] answer from index 2
    a = DPOPair([10, 11, 12, 13], [10, 11, 14], 0.0, "none", "s", "unlabelled", chosen_start=2, rejected_start=2,
                ref_chosen=-1.5, ref_rejected=-2.5)
    b = DPOPair([20, 21], [20, 22, 23], 0.0, "none", "s", "unlabelled", chosen_start=1, rejected_start=1,
                ref_chosen=-0.5, ref_rejected=-3.0)
    batch = collate_dpo([PairRow([a]), PairRow([b])])
    assert batch["input_ids"].tolist() == [[10, 11, 12, 13, 10, 11, 14, 20, 21, 20, 22, 23]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 0, 1, 2, 0, 1, 0, 1, 2]]
    x = IGNORE
    assert batch["labels"].tolist() == [[x, 12, 13, x, x, 14, x, 21, x, 22, 23, x]]
    assert batch["label_seq"].tolist() == [0, 0, 1, 2, 3, 3]
    assert torch.equal(batch["ref_logps"], torch.tensor([-1.5, -2.5, -0.5, -3.0]))


def test_scoring_rows_keep_order_within_the_token_budget():
    pairs = [DPOPair([1] * n, [2] * n, 0.0, "none", "s", "unlabelled", chosen_start=1, rejected_start=1)
             for n in (3, 3, 5, 2)]  # 6, 6, 10, 4 tokens
    rows = scoring_rows(pairs, 12)
    assert [[p.n_tokens for p in r.pairs] for r in rows] == [[6, 6], [10], [4]]
    assert "ref_logps" not in collate_dpo(rows)  # not scored yet
