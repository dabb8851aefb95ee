import math

import pytest

from chatalign.training.schedule import lr_factor, warmup_steps_for


def test_warmup_is_3_percent_with_at_least_5():
    assert warmup_steps_for(100, 0.03, 5) == 5      # 3 < 5
    assert warmup_steps_for(1000, 0.03, 5) == 30
    assert warmup_steps_for(3, 0.03, 5) == 3        # never longer than the run


def test_linear_warmup_then_cosine_to_ten_percent():
    # 4 warmup steps: 1/4, 2/4, 3/4, 4/4
    assert [lr_factor(s, 16, 4) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    # decay spans the 12 steps after warmup
    assert lr_factor(4, 16, 4, "cosine", 0.1) == pytest.approx(1.0)
    assert lr_factor(16, 16, 4, "cosine", 0.1) == pytest.approx(0.1)
    # step 8: progress 4/12, cos(pi/3) = 0.5 -> decay 0.75 -> 0.1 + 0.9 * 0.75 = 0.775
    assert lr_factor(8, 16, 4, "cosine", 0.1) == pytest.approx(0.775)
    # step 10: progress 1/2 -> decay 0.5 -> 0.55
    assert lr_factor(10, 16, 4, "cosine", 0.1) == pytest.approx(0.55)


def test_constant_and_linear():
    assert lr_factor(50, 100, 0, "constant") == 1.0
    assert lr_factor(0, 11, 0, "linear") == 1.0
    assert lr_factor(5, 10, 0, "linear") == pytest.approx(0.5)
    assert math.isclose(lr_factor(10, 10, 0, "linear"), 0.0, abs_tol=1e-12)
    with pytest.raises(ValueError):
        lr_factor(1, 10, 0, "bogus")
