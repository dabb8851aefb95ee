"""The rollout engine's batch surgery: prefill groups, dropping finished rows in place (chatalign.rollout.batch)."""

import pytest
import torch

from chatalign.rollout.batch import PREFILL_MIN_TOKENS, DecodeBatch, prefill_groups

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_prefill_groups_split_unlike_lengths_once_a_group_is_big_enough():
    width = 172
    rows = -(-PREFILL_MIN_TOKENS // width)  # the first group needs this many rows before it may close
    lengths = [150] * 5 + [width] * rows + [160] * 3
    groups = prefill_groups(lengths)
    # longest first; 160 is within 10% of 172 so it joins; 150 is not, and the first group is big enough
    assert groups == [list(range(5, 5 + rows)) + [5 + rows, 6 + rows, 7 + rows], [0, 1, 2, 3, 4]]
    # a small group keeps taking prompts however short they are (a tiny forward wastes more than padding)
    assert prefill_groups([width, 10, 3]) == [[0, 1, 2]]
    assert sorted(i for g in prefill_groups(lengths[::-1]) for i in g) == list(range(len(lengths)))


def test_prefill_groups_rows_follow_their_prompts(sharp_model, monkeypatch):
    import chatalign.rollout.batch as rb

    monkeypatch.setattr(rb, "PREFILL_MIN_TOKENS", 1)  # every length its own forward
    prompts = [[5, 6], [7, 8, 9, 10, 11, 12], [13], [14, 15, 16, 17]]  # not longest first
    row_prompt = [0, 1, 2, 3, 3, 0]  # K = 2 for two of them
    stats = {"prefill_calls": 0, "prefill_tokens": 0}
    with torch.inference_mode():
        batch, logits = DecodeBatch.prefill(sharp_model, prompts, [10, 11, 12, 13, 14, 15], row_prompt, 0, "cpu", stats)
        assert stats == {"prefill_calls": 4, "prefill_tokens": 13}
        assert sorted(batch.rows) == [10, 11, 12, 13, 14, 15]
        for r, item in enumerate(batch.rows):
            prompt = prompts[row_prompt[item - 10]]
            assert batch.next_pos[r] == len(prompt) and batch.mask[r].sum() == len(prompt)
            alone = sharp_model(torch.tensor([prompt])).logits[0, -1]
            assert torch.allclose(logits[r], alone, atol=1e-4, rtol=0)


def test_keep_in_place_equals_copying_the_live_rows(sharp_model):
    prompts = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14, 15, 16], [17], [18, 19, 20, 21]]
    with torch.inference_mode():
        batch, logits = DecodeBatch.prefill(sharp_model, prompts, list(range(5)), list(range(5)), 0, "cpu")
        batch.last = logits.argmax(-1)
        for _ in range(2):
            batch.last = batch.step(sharp_model).argmax(-1)
        # Row 0 holds the longest prompt: dropping it frees leading columns no live row uses.
        alive = [False, True, False, True, True]
        live = torch.tensor([i for i, a in enumerate(alive) if a])
        ref = DecodeBatch(batch.cache.select_rows(live), batch.mask.index_select(0, live),
                          batch.next_pos.index_select(0, live), batch.last.index_select(0, live),
                          [batch.rows[i] for i in live.tolist()])
        width = batch.mask.shape[1]
        kept = batch.keep(alive)
        assert sorted(kept.rows) == sorted(ref.rows) and kept.rows != ref.rows  # moved, not copied in order
        assert kept.mask.shape[1] < width  # the longest prompt's leading columns are gone
        assert kept.cache.get_seq_length() == kept.mask.shape[1]
        at = {item: r for r, item in enumerate(ref.rows)}
        for r, item in enumerate(kept.rows):
            assert kept.last[r] == ref.last[at[item]] and kept.next_pos[r] == ref.next_pos[at[item]]
        got, want = kept.step(sharp_model), ref.step(sharp_model)
        for r, item in enumerate(kept.rows):
            assert torch.allclose(got[r], want[at[item]], atol=1e-4, rtol=0)
        # all rows done -> no batch; none done -> the same batch
        assert kept.keep([False] * len(kept)) is None
        assert ref.keep([True] * len(ref)) is ref


class NewCacheName(torch.nn.Module):
    def forward(self, input_ids, cache=None):
        return input_ids


class OldCacheName(torch.nn.Module):
    def forward(self, input_ids, past_key_values=None):
        return input_ids


def test_cache_keyword_follows_the_forward_and_is_read_once_per_model(monkeypatch):
    from chatalign.rollout import batch

    new, old = NewCacheName(), OldCacheName()
    assert batch.cache_keyword(new) == "cache" and batch.cache_keyword(old) == "past_key_values"
    reads = []
    monkeypatch.setattr(batch, "_read_cache_keyword", lambda model: reads.append(model) or "cache")
    assert [batch.cache_keyword(new) for _ in range(3)] == ["cache"] * 3 and reads == []  # remembered
    assert batch.cache_keyword(NewCacheName()) == "cache" and len(reads) == 1  # a new model is read
    assert batch.cache_keyword(1) == "cache" and batch.cache_keyword(1) == "cache" and len(reads) == 3  # no weakref
