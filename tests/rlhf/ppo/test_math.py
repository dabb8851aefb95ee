"""PPO arithmetic against numbers worked by hand (the working is in the comments)."""

import math

import pytest
import torch

from chatalign.rlhf.ppo.math import (
    entropy_from_logits,
    gae,
    kl_per_token,
    last_token_index,
    masked_mean,
    masked_var,
    masked_whiten,
    ppo_policy_loss,
    ppo_value_loss,
    token_rewards,
)

X = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
M = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # unmasked: 1, 2, 4


def close(a, b, tol=1e-6):
    return torch.allclose(torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32),
                          atol=tol, rtol=0)


def test_masked_mean_over_all_and_per_row():
    assert close(masked_mean(X, M), 7 / 3)  # (1 + 2 + 4) / 3
    assert close(masked_mean(X, M, dim=1), [1.5, 4.0])
    assert close(masked_mean(X, M.bool()), 7 / 3)  # a bool mask works the same


def test_masked_var_population_and_unbiased():
    # mean 7/3; deviations -4/3, -1/3, 5/3; squares 16/9 + 1/9 + 25/9 = 42/9
    assert close(masked_var(X, M), 42 / 9 / 3)
    assert close(masked_var(X, M, unbiased=True), 42 / 9 / 2)
    with pytest.raises(ValueError):
        masked_var(X, torch.tensor([[1.0, 0, 0], [0, 0, 0]]), unbiased=True)


def test_masked_whiten_values_and_zero_padding():
    std = math.sqrt(14 / 9)
    expected = torch.tensor([[(1 - 7 / 3) / std, (2 - 7 / 3) / std, 0.0], [(4 - 7 / 3) / std, 0.0, 0.0]])
    out = masked_whiten(X, M, eps=0.0)
    assert close(out, expected, 1e-5)
    assert close(expected[0, 0], -1.0690450, 1e-6)  # the hand value
    # shift_mean=False keeps the mean: the unmasked entries become (x - m)/s + m
    kept = masked_whiten(X, M, shift_mean=False, eps=0.0)
    assert close(kept[0, 0], -1.0690450 + 7 / 3, 1e-5) and kept[0, 2] == 0


def test_kl_estimators_by_hand():
    logp = torch.tensor([-1.0, -2.0])
    ref = torch.tensor([-1.5, -1.0])  # d = logp - ref = [0.5, -1.0]
    assert close(kl_per_token(logp, ref, "k1"), [0.5, -1.0])
    # k3 = exp(-d) - 1 + d: exp(-0.5) - 0.5 = 0.1065307; e - 2 = 0.7182818
    assert close(kl_per_token(logp, ref, "k3"), [0.1065307, 0.7182818])
    assert close(kl_per_token(logp, ref, "abs"), [0.5, 1.0])
    assert close(kl_per_token(logp, ref, "mse"), [0.125, 0.5])
    with pytest.raises(ValueError, match="k1"):
        kl_per_token(logp, ref, "k2")


def test_k3_is_never_negative_and_zero_on_equal_policies():
    g = torch.Generator().manual_seed(0)
    logp, ref = -torch.rand(1000, generator=g) * 8, -torch.rand(1000, generator=g) * 8
    assert (kl_per_token(logp, ref, "k3") >= 0).all()
    assert (kl_per_token(logp, ref, "k1") < 0).any()  # k1 per token can be negative
    assert close(kl_per_token(logp, logp, "k3"), torch.zeros(1000))


def test_token_rewards_kl_penalty_everywhere_score_on_last_answer_token():
    score = torch.tensor([1.0, 2.0])
    kl = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    out = token_rewards(score, kl, 0.1, mask)
    # row 0: -0.01, -0.02, -0.03 + 1.0; row 1: -0.04, -0.05 + 2.0, padding 0
    assert close(out, [[-0.01, -0.02, 0.97], [-0.04, 1.95, 0.0]])


def test_token_rewards_refuses_an_empty_answer():
    with pytest.raises(ValueError, match="empty"):
        token_rewards(torch.tensor([1.0]), torch.zeros(1, 3), 0.1, torch.zeros(1, 3))
    assert last_token_index(torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])).tolist() == [1, 3]


def test_gae_by_hand_full_and_padded_rows():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 2.0, 9.0]])  # 9.0 sits on padding: must be ignored
    values = torch.tensor([[0.5, 0.6, 0.7], [1.0, 0.5, 3.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    adv, ret = gae(rewards[:1], values[:1], mask[:1], gamma=1.0, lam=0.5)
    # t2: delta = 1 - 0.7 = 0.3 -> A = 0.3
    # t1: delta = 0 + 0.7 - 0.6 = 0.1 -> A = 0.1 + 0.5 * 0.3 = 0.25
    # t0: delta = 0 + 0.6 - 0.5 = 0.1 -> A = 0.1 + 0.5 * 0.25 = 0.225
    assert close(adv, [[0.225, 0.25, 0.3]]) and close(ret, [[0.725, 0.85, 1.0]])
    adv, ret = gae(rewards[1:], values[1:], mask[1:], gamma=0.9, lam=0.5)
    # last answer token t1: delta = 2 - 0.5 = 1.5 (no bootstrap from the padding's value 3.0)
    # t0: delta = 0 + 0.9 * 0.5 - 1.0 = -0.55 -> A = -0.55 + 0.9 * 0.5 * 1.5 = 0.125
    assert close(adv, [[0.125, 1.5, 0.0]]) and close(ret, [[1.125, 2.0, 0.0]])


def test_gae_with_lambda_one_is_reward_to_go_minus_value():
    rewards = torch.tensor([[0.5, -1.0, 2.0]])
    values = torch.tensor([[0.3, 0.2, 0.1]])
    adv, ret = gae(rewards, values, torch.ones(1, 3), gamma=1.0, lam=1.0)
    assert close(ret, [[1.5, 1.0, 2.0]])  # sums of the rewards from t on
    assert close(adv, [[1.2, 0.8, 1.9]])


def test_ppo_policy_loss_clipping_by_hand():
    # ratios 1.5, 0.5, 0.5, 1.0 (+ one masked token); advantages +1, +1, -2, +3
    old = torch.zeros(5)
    logp = torch.log(torch.tensor([1.5, 0.5, 0.5, 1.0, 5.0])).requires_grad_()
    adv = torch.tensor([1.0, 1.0, -2.0, 3.0, 100.0])
    mask = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0])
    loss, clip_frac, approx_kl = ppo_policy_loss(logp, old, adv, mask, clip=0.2)
    # token 1: max(-1.5, -1.2) = -1.2 (clipped); token 2: max(-0.5, -0.8) = -0.5
    # token 3: max(1.0, 1.6) = 1.6 (clipped);     token 4: max(-3, -3) = -3
    assert close(loss, (-1.2 - 0.5 + 1.6 - 3.0) / 4)
    assert close(clip_frac, 0.5)
    # (r - 1) - ln r: 0.5 - ln 1.5 = 0.0945349; -0.5 + ln 2 = 0.1931472 (twice); 0
    assert close(approx_kl, (0.0945349 + 2 * 0.1931472) / 4)
    loss.backward()
    # clipped tokens get no gradient; d/dlogp(-A r)/4 = -A r / 4 for the others
    assert close(logp.grad, [0.0, -0.125, 0.0, -0.75, 0.0])


def test_ppo_value_loss_by_hand():
    values = torch.tensor([1.0, 2.0, 0.0])
    old = torch.tensor([0.5, 2.5, 0.0])
    returns = torch.tensor([2.0, 1.0, 0.3])
    # 1: max((1-2)^2, (0.7-2)^2) = 1.69; 2: max((2-1)^2, (2.3-1)^2) = 1.69; 3: 0.09
    assert close(ppo_value_loss(values, old, returns, torch.ones(3), clip=0.2), 0.5 * (1.69 + 1.69 + 0.09) / 3)
    # the clipped error can be the larger one even when the new value is exact
    assert close(ppo_value_loss(torch.tensor([1.0]), torch.tensor([0.9]), torch.tensor([1.0]), torch.ones(1),
                                clip=0.05), 0.5 * 0.05 ** 2)


def test_entropy_from_logits_by_hand():
    assert close(entropy_from_logits(torch.zeros(4)), math.log(4))
    # probs 0.25, 0.75: 0.25 ln 4 + 0.75 ln(4/3) = 0.5623351
    assert close(entropy_from_logits(torch.tensor([0.0, math.log(3.0)])), 0.5623351)
    peaked = entropy_from_logits(torch.tensor([[0.0, -1e4], [5.0, 5.0]]))
    assert close(peaked, [0.0, math.log(2)]) and torch.isfinite(peaked).all()
