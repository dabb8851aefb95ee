"""Margin tables (Llama 2 Table 27) and the ranking loss (eq. 2) against hand-worked numbers."""

import math

import pytest
import torch

from chatalign.data_schemas import Strength
from chatalign.reward.loss import ranking_loss
from chatalign.reward.margins import MARGIN_TABLES, margin_for, resolve_margin_table


def test_paper_tables():
    assert MARGIN_TABLES["small"] == pytest.approx({"significantly_better": 1.0, "better": 2 / 3,
                                                    "slightly_better": 1 / 3, "negligibly_better": 0.0,
                                                    "unsure": 0.0})
    assert MARGIN_TABLES["large"] == {"significantly_better": 3.0, "better": 2.0, "slightly_better": 1.0,
                                      "negligibly_better": 0.0, "unsure": 0.0}
    assert set(MARGIN_TABLES["none"].values()) == {0.0}


def test_margin_for_enum_string_and_default():
    large = resolve_margin_table("large")
    assert margin_for(Strength.better, large) == 2.0
    assert margin_for("slightly_better", large) == 1.0
    assert margin_for(None, large, default_strength="significantly_better") == 3.0
    assert margin_for(Strength.unsure, resolve_margin_table("small"), "better") == 0.0  # own label wins
    with pytest.raises(ValueError, match="no default"):
        margin_for(None, large)
    with pytest.raises(ValueError, match="unknown preference strength 'much_better'"):
        margin_for("much_better", large)


def test_custom_mapping_must_name_every_label():
    custom = {"significantly_better": 2.0, "better": 1.5, "slightly_better": 1.0, "negligibly_better": 0.5,
              "unsure": 0.0}
    assert resolve_margin_table(custom)["negligibly_better"] == 0.5
    with pytest.raises(ValueError, match=r"missing \['unsure'\]"):
        resolve_margin_table({k: v for k, v in custom.items() if k != "unsure"})
    with pytest.raises(ValueError, match="unknown strength"):
        resolve_margin_table({**custom, "way_better": 4.0})
    with pytest.raises(ValueError, match="margin table 'medium'"):
        resolve_margin_table("medium")


def test_ranking_loss_hand_worked():
    rc = torch.tensor([1.0, 0.0, 2.0, 1.0, -1.0])
    rr = torch.tensor([0.0, 0.0, 1.0, 0.0, 1.0])
    m = torch.tensor([0.0, 0.0, 1.0, 3.0, 0.0])
    expected = [
        math.log(1 + math.exp(-1)),  # -log sigmoid(1) = 0.31326
        math.log(2),  # equal rewards: 0.69315
        math.log(2),  # gap 1 exactly eaten by margin 1
        math.log(1 + math.exp(2)),  # gap 1 - margin 3 = -2: 2.12693
        math.log(1 + math.exp(2)),  # wrong order by 2
    ]
    got = ranking_loss(rc, rr, m)
    assert got.tolist() == pytest.approx(expected, abs=1e-6)
    assert got[0].item() == pytest.approx(0.3132617, abs=1e-6)
    assert ranking_loss(rc, rr).tolist()[:2] == pytest.approx(expected[:2], abs=1e-6)  # no margin = m 0


def test_margin_raises_the_loss_of_a_correct_pair():
    rc, rr = torch.tensor([1.0]), torch.tensor([0.0])
    losses = [ranking_loss(rc, rr, torch.tensor([m])).item() for m in (0.0, 1 / 3, 2 / 3, 1.0)]
    assert losses == sorted(losses) and losses[-1] == pytest.approx(math.log(2))
