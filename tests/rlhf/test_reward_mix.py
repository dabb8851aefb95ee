"""The piecewise RM combination, logit and whitening, win rate: against numbers worked by hand."""

import math

import pytest
import torch

from chatalign.rlhf.reward_mix import (
    combined_score,
    logit,
    piecewise_reward,
    transform_reward,
    whiten,
    win_rate,
)


def close(a, b, tol=1e-6):
    return torch.allclose(torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32),
                          atol=tol, rtol=0)


def test_piecewise_reward_takes_safety_on_safety_prompts_and_below_threshold():
    r_help = torch.tensor([0.9, 0.8, 0.7, 0.6])
    r_safe = torch.tensor([0.5, 0.1, 0.9, 0.15])
    is_safety = torch.tensor([False, False, True, False])
    # 1: helpful prompt, safe enough -> R_h; 2: R_s = 0.1 < 0.15 -> R_s; 3: safety prompt -> R_s;
    # 4: R_s = 0.15 is not below 0.15 -> R_h
    assert close(piecewise_reward(r_help, r_safe, is_safety), [0.9, 0.1, 0.9, 0.6])
    assert close(piecewise_reward(r_help, r_safe, is_safety, threshold=0.6), [0.5, 0.1, 0.9, 0.15])
    assert close(piecewise_reward([0.9], [0.5], [True]), [0.5])  # plain lists are accepted


def test_logit_inverts_sigmoid_and_clamps():
    assert close(logit(torch.tensor([0.5, 0.8, 0.2])), [0.0, math.log(4), -math.log(4)])
    edge = logit(torch.tensor([0.0, 1.0]), eps=1e-6)
    assert close(edge, [math.log(1e-6 / (1 - 1e-6)), math.log((1 - 1e-6) / 1e-6)], 1e-4)
    assert torch.isfinite(edge).all()
    x = torch.tensor([-3.0, -0.5, 0.0, 2.0])
    assert close(logit(torch.sigmoid(x)), x, 1e-5)


def test_whiten_by_hand():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, population variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25
    s = math.sqrt(1.25)
    assert close(whiten(x, eps=0.0), [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s])
    assert close(whiten(x, eps=0.0)[0], -1.3416408)
    assert close(whiten(x, shift_mean=False, eps=0.0), [2.5 - 1.5 / s, 2.5 - 0.5 / s, 2.5 + 0.5 / s, 2.5 + 1.5 / s])


def test_combined_score_is_whitened_logit_of_piecewise():
    # piecewise -> [0.8, 0.5]; logit -> [ln 4, 0]; whitened (two values) -> [1, -1]
    out = combined_score(torch.tensor([0.8, 0.5]), torch.tensor([0.9, 0.9]), torch.tensor([False, False]))
    assert close(out, [1.0, -1.0], 1e-5)


def test_transform_reward_by_hand():
    r_c = torch.tensor([0.8, 0.5])
    assert close(transform_reward(r_c, "raw"), [0.8, 0.5])
    assert close(transform_reward(r_c, "logit"), [math.log(4), 0.0])  # log(0.8 / 0.2), log(0.5 / 0.5)
    assert close(transform_reward(r_c, "whiten_logit"), [1.0, -1.0], 1e-5)  # two values: +-1 around their mean
    assert close(transform_reward(torch.tensor([0.8]), "whiten_logit"), [math.log(4)])  # one answer: not whitened


def test_win_rate_excludes_ties():
    assert win_rate(3, 1) == 0.75
    assert win_rate(torch.tensor(2), torch.tensor(2)) == 0.5  # however many ties there were
    assert math.isnan(win_rate(0, 0))
    with pytest.raises(ValueError):
        win_rate(-1, 2)
