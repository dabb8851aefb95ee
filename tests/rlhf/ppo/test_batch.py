"""Rollouts as answer-aligned tensors; per-iteration prompt draws."""

import pytest
import torch

from chatalign.rlhf.ppo.batch import build_batch, derived_seed, iteration_prompt_indices, pad_ragged


def test_build_batch_aligns_answer_tokens_with_the_positions_that_predict_them():
    b = build_batch([[5, 6, 7], [8]], [[1, 2], [3, 4, 9]], pad_id=0)
    assert b.input_ids.tolist() == [[5, 6, 7, 1, 2], [8, 3, 4, 9, 0]]
    # row 0: answer token 1 sits at index 3, predicted from index 2
    assert b.positions.tolist() == [[2, 3, 2], [0, 1, 2]]
    assert b.targets.tolist() == [[1, 2, 0], [3, 4, 9]]
    assert b.mask.tolist() == [[1, 1, 0], [1, 1, 1]]
    for r in range(2):
        for i in range(int(b.mask[r].sum())):
            assert b.input_ids[r, b.positions[r, i] + 1] == b.targets[r, i]


def test_select_trims_to_the_rows_taken():
    b = build_batch([[5, 6, 7], [8]], [[1, 2], [3, 4, 9]], pad_id=0)
    sub = b.select([0])
    assert sub.input_ids.tolist() == [[5, 6, 7, 1, 2]] and sub.mask.tolist() == [[1, 1]]
    assert sub.prompt_lens == [3] and sub.response_lens == [2]


def test_build_batch_refuses_empty_answers():
    with pytest.raises(ValueError):
        build_batch([[1]], [[]], pad_id=0)


def test_pad_ragged():
    assert pad_ragged([[0.5], [1.0, 2.0]], 3).tolist() == [[0.5, 0, 0], [1.0, 2.0, 0]]


def test_iteration_prompts_cover_each_epoch_once_and_repeat_exactly():
    n, batch = 10, 4
    drawn = [i for it in range(5) for i in iteration_prompt_indices(n, batch, it, seed=3)]
    assert sorted(drawn[:10]) == list(range(10)) and sorted(drawn[10:20]) == list(range(10))
    assert iteration_prompt_indices(n, batch, 2, seed=3) == drawn[8:12]  # a pure function of the iteration
    assert iteration_prompt_indices(n, batch, 2, seed=4) != drawn[8:12]
    assert len(iteration_prompt_indices(3, 7, 0, seed=0)) == 7  # a batch larger than the prompt set


def test_derived_seeds_differ_by_purpose_and_iteration():
    seeds = {derived_seed(0, it, salt) for it in range(5) for salt in range(3)}
    assert len(seeds) == 15
    torch.Generator().manual_seed(derived_seed(2**40, 10**6, 3))  # stays a valid seed
