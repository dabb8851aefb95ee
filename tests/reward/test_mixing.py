"""Source mixing ratios (reproducible from a seed) and the safety bins with their exclusion."""

from collections import Counter
from types import SimpleNamespace

import pytest

from chatalign.reward.mixing import largest_total, sample_mix, split_total
from chatalign.reward.safety_bins import (
    BOTH_SAFE,
    BOTH_UNSAFE,
    SAFE_OVER_UNSAFE,
    UNLABELLED,
    UNSAFE_OVER_SAFE,
    bin_counts,
    drop_unsafe_over_safe,
    safety_bin,
)


def test_split_total_largest_remainder():
    assert split_total(10, [0.9, 0.1]) == [9, 1]
    assert split_total(2222, [0.9, 0.1]) == [2000, 222]  # 1999.8 -> 2000, 222.2 -> 222
    assert split_total(7, [1, 1, 1]) == [3, 2, 2]  # tie on the remainder: first source first
    assert sum(split_total(1001, [3, 5, 11])) == 1001


def test_largest_total_never_oversamples():
    assert largest_total([2000, 5000], [0.9, 0.1]) == 2222
    assert largest_total([100, 30], [0.5, 0.5]) == 60  # helpfulness RM: all helpful + an equal share
    assert largest_total([485], [1.0]) == 485
    for avail, ratios in [([485, 500], [0.9, 0.1]), ([7, 3, 100], [1, 2, 3]), ([1, 1], [0.3, 0.7])]:
        counts = split_total(largest_total(avail, ratios), ratios)
        assert all(c <= n for c, n in zip(counts, avail, strict=True))


def test_sample_mix_ratio_and_reproducibility():
    safety = [f"s{i}" for i in range(485)]
    helpful = [f"h{i}" for i in range(500)]
    mix = sample_mix([safety, helpful], [0.9, 0.1], seed=3)
    assert mix.counts == [484, 54] and mix.oversampled == [False, False]
    per = Counter(src for src, _ in mix.items)
    assert per == {0: 484, 1: 54}
    assert len({x for _, x in mix.items}) == 538  # no repeats
    again = sample_mix([safety, helpful], [0.9, 0.1], seed=3)
    assert again.items == mix.items
    other = sample_mix([safety, helpful], [0.9, 0.1], seed=4)
    assert other.items != mix.items
    # sources draw with their own RNG: the helpful draw does not depend on the safety pool's size
    smaller = sample_mix([safety[:400], helpful], [0.9, 0.1], seed=3, total=538)
    assert [x for s, x in smaller.items if s == 1] != [] and \
        sorted(x for s, x in smaller.items if s == 1) == sorted(x for s, x in mix.items if s == 1)


def test_total_oversamples_and_reports():
    mix = sample_mix([["a", "b", "c"], ["x"] * 10], [1, 1], seed=0, total=10)
    assert mix.counts == [5, 5] and mix.oversampled == [True, False]
    drawn = Counter(x for s, x in mix.items if s == 0)
    assert sorted(drawn.values()) == [1, 2, 2]  # one whole pass, then 2 more without repetition


def test_bad_mixes():
    with pytest.raises(ValueError, match="positive"):
        sample_mix([[1], [2]], [1, 0], seed=0)
    with pytest.raises(ValueError, match="no pairs"):
        sample_mix([[1], []], [1, 1], seed=0)


def test_safety_bins_and_exclusion():
    assert safety_bin(True, False) == SAFE_OVER_UNSAFE
    assert safety_bin(True, True) == BOTH_SAFE
    assert safety_bin(False, False) == BOTH_UNSAFE
    assert safety_bin(False, True) == UNSAFE_OVER_SAFE
    assert safety_bin(None, True) == UNLABELLED and safety_bin(None, None) == UNLABELLED
    prefs = [SimpleNamespace(chosen_safe=c, rejected_safe=r) for c, r in
             [(True, False), (True, False), (True, True), (False, False), (False, True), (False, True), (None, None)]]
    kept, excluded = drop_unsafe_over_safe(prefs)
    assert excluded == 2 and len(kept) == 5
    assert all(safety_bin(p.chosen_safe, p.rejected_safe) != UNSAFE_OVER_SAFE for p in kept)
    assert bin_counts(kept) == {SAFE_OVER_UNSAFE: 2, BOTH_SAFE: 1, BOTH_UNSAFE: 1, UNLABELLED: 1}


def test_cap_counts_by_hand():
    from chatalign.reward.mixing import cap_counts

    # a 7-pair batch at 15% of 100 pairs would be drawn 15 times over 7 pairs; held to 2 passes (14), the other
    # source takes the one left over
    assert cap_counts([15, 85], [7, 1000], [0.15, 0.85], [2, None]) == [14, 86]
    # ratios 1:1:2 of 40 -> 10, 10, 20; the first source (5 pairs, once each) gives 5; the 35 left split 1:2
    # -> 11.67, 23.33 -> floor 11, 23, the spare one to the larger remainder -> 12, 23
    assert cap_counts([10, 10, 20], [5, 100, 100], [1, 1, 2], [1, None, None]) == [5, 12, 23]
    # capping one pushes another over its own cap: both held, the third takes the rest
    assert cap_counts([10, 10, 20], [5, 11, 100], [1, 1, 2], [1, 1, None]) == [5, 11, 24]
    # every source capped: the total shrinks
    assert cap_counts([10, 10], [3, 4], [1, 1], [1, 1]) == [3, 4]
    assert cap_counts([10, 10], [30, 40], [1, 1], [1, None]) == [10, 10]  # under its cap: unchanged


def test_sample_mix_with_max_repeats_draws_a_small_source_at_most_that_often():
    batch, big = [f"b{i}" for i in range(7)], [f"h{i}" for i in range(1000)]
    mix = sample_mix([batch, big], [0.15, 0.85], seed=0, total=100, max_repeats=[2, None])
    assert mix.counts == [14, 86]
    drawn = Counter(x for i, x in mix.items if i == 0)
    assert set(drawn) == set(batch) and set(drawn.values()) == {2}  # two whole passes, nothing more
    assert sample_mix([batch, big], [0.15, 0.85], seed=0, total=100).counts == [15, 85]  # without: as asked
