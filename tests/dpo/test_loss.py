"""The DPO loss (Rafailov et al. 2023 eq. 7), implicit rewards and sequence sums against numbers worked by hand."""

import math

import pytest
import torch

from chatalign.dpo.loss import dpo_losses, implicit_rewards, sequence_logps


def test_implicit_reward_is_beta_times_the_log_ratio():
    # 0.5 * (-10 - (-12)) = 1.0 ; 0.5 * (-15 - (-14)) = -0.5
    r = implicit_rewards(torch.tensor([-10.0, -15.0]), torch.tensor([-12.0, -14.0]), 0.5)
    assert r.tolist() == [1.0, -0.5]


def test_loss_by_hand():
    # pair 1: chosen ratio +2, rejected ratio -1, beta 0.5 -> margin 1.5 -> log(1 + e^-1.5) = log(1.2231302) = 0.2014133
    # pair 2: policy == reference -> margin 0 -> log 2 = 0.6931472
    # pair 3: chosen ratio -3, rejected ratio +1, beta 0.5 -> margin -2 -> log(1 + e^2) = log(8.3890561) = 2.1269280
    losses = dpo_losses(torch.tensor([-10.0, -7.0, -9.0]), torch.tensor([-15.0, -8.0, -4.0]),
                        torch.tensor([-12.0, -7.0, -6.0]), torch.tensor([-14.0, -8.0, -5.0]), beta=0.5)
    assert losses.tolist() == pytest.approx([0.2014133, 0.6931472, 2.1269280], abs=1e-6)


def test_beta_scales_the_margin():
    # the same log ratios (+1 chosen, -1 rejected) under beta 0.1 -> margin 0.2 -> log(1 + e^-0.2) = 0.5981389
    loss = dpo_losses(torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]), torch.tensor([-2.0]), 0.1)
    assert loss.item() == pytest.approx(0.5981389, abs=1e-6)


def test_large_margins_stay_finite():
    # -log sigmoid(-200) = 200 (+ e^-200): no overflow to inf, no log(0)
    loss = dpo_losses(torch.tensor([-500.0]), torch.tensor([-100.0]), torch.tensor([-100.0]),
                      torch.tensor([-100.0]), 0.5)
    assert loss.item() == pytest.approx(200.0)
    assert dpo_losses(torch.tensor([100.0]), torch.tensor([-100.0]), torch.tensor([0.0]), torch.tensor([0.0]),
                      1.0).item() == pytest.approx(math.exp(-200.0), abs=1e-30)


def test_gradient_pushes_chosen_up_and_rejected_down():
    # d/d logp_chosen of -log sigmoid(beta * m) = -beta * sigmoid(-beta * m); at m = 0, beta 0.5: -0.25
    chosen = torch.tensor([-5.0], requires_grad=True)
    rejected = torch.tensor([-5.0], requires_grad=True)
    dpo_losses(chosen, rejected, torch.tensor([-5.0]), torch.tensor([-5.0]), 0.5).sum().backward()
    assert chosen.grad.item() == pytest.approx(-0.25) and rejected.grad.item() == pytest.approx(0.25)


def test_sequence_logps_sums_each_sequences_tokens():
    # tokens of sequence 0: -1, -2 ; sequence 1: -0.5 ; sequence 2: -3, -1, -1
    tokens = torch.tensor([-1.0, -2.0, -0.5, -3.0, -1.0, -1.0])
    index = torch.tensor([0, 0, 1, 2, 2, 2])
    assert sequence_logps(tokens, index, 3).tolist() == [-3.0, -0.5, -5.0]
