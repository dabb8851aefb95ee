"""Figure 7 curves: expected max / median of k samples out of K, against numbers worked by hand."""

import math

import pytest

from chatalign.rlhf.rs.curves import (
    expected_max,
    expected_median,
    expected_order_statistic,
    plot_rs_curves,
    reward_vs_k,
    reward_vs_temperature,
)


def test_expected_max_of_pairs_out_of_three():
    # subsets of {1, 2, 3} of size 2: {1,2} {1,3} {2,3}; maxima 2, 3, 3 -> 8/3
    assert expected_max([3.0, 1.0, 2.0], 2) == pytest.approx(8 / 3)
    assert expected_max([3.0, 1.0, 2.0], 1) == pytest.approx(2.0)  # the plain mean
    assert expected_max([3.0, 1.0, 2.0], 3) == pytest.approx(3.0)  # all samples: the max


def test_expected_median_even_and_odd():
    # size 2 medians: 1.5, 2, 2.5 -> 2
    assert expected_median([1.0, 2.0, 3.0], 2) == pytest.approx(2.0)
    # K=4 values 0, 1, 2, 10; k=3 subsets: {0,1,2} med 1, {0,1,10} 1, {0,2,10} 2, {1,2,10} 2 -> 1.5
    assert expected_median([10.0, 0.0, 2.0, 1.0], 3) == pytest.approx(1.5)


def test_order_statistic_minimum_and_bounds():
    # min of 2 out of {1, 2, 3}: 1, 1, 2 -> 4/3
    assert expected_order_statistic([1.0, 2.0, 3.0], 2, 1) == pytest.approx(4 / 3)
    with pytest.raises(ValueError):
        expected_order_statistic([1.0, 2.0], 3, 1)


def test_reward_vs_k_averages_over_prompts_and_rises():
    rows = reward_vs_k([[0.0, 1.0], [0.5, 0.5, 0.5]])
    assert [r["k"] for r in rows] == [1, 2, 3]
    assert rows[0]["max"] == pytest.approx((0.5 + 0.5) / 2)
    assert rows[1]["max"] == pytest.approx((1.0 + 0.5) / 2)
    assert rows[2] == {"k": 3, "max": 0.5, "median": 0.5, "prompts": 1}  # the 2-sample prompt sits out
    assert rows[0]["median"] == pytest.approx(0.5)


def test_reward_vs_temperature_and_plot(tmp_path):
    rows = reward_vs_temperature({1.2: [[0.0, 1.0]], 0.7: [[0.4, 0.6]]})
    assert [r["temperature"] for r in rows] == [0.7, 1.2]
    assert rows[1]["max"] == pytest.approx(1.0) and rows[1]["median"] == pytest.approx(0.5)
    assert not math.isnan(rows[0]["median"])
    png = plot_rs_curves(reward_vs_k([[0.0, 1.0]]), rows, tmp_path / "c.png", "t")
    assert png.stat().st_size > 1000
