"""Trivial preference baselines: numbers worked by hand for the logistic step and the tie rule; a bag of words
that learns a word shortcut, and cannot on pairs without one."""

from __future__ import annotations

import math

import numpy as np

from chatalign.evaluation.baselines import (
    BagOfWordsBaseline,
    fit_logistic,
    length_accuracy,
    pair_accuracy,
    words,
)


def test_pair_accuracy_counts_ties_half():
    assert pair_accuracy([2, 1, 3], [1, 1, 5]) == (1 + 0.5 + 0) / 3
    assert pair_accuracy([], []) is None


def test_length_prefers_the_longer():
    assert length_accuracy(["one two three", "a"], ["one", "b c"]) == 0.5
    assert length_accuracy(["same length", "x"], ["other words", "y"]) == 0.5  # two ties


def test_one_gradient_step_by_hand():
    # x = [1] with y = 1 and x = [-1] with y = 0; at w = 0 both p = 0.5:
    # grad = ((0.5 - 1) * 1 + (0.5 - 0) * -1) / 2 = -0.5, so w = 0 - lr * -0.5 = 0.5 with lr = 1
    x, y = np.array([[1.0], [-1.0]]), np.array([1.0, 0.0])
    assert fit_logistic(x, y, l2=0.0, steps=1, lr=1.0).tolist() == [0.5]
    # a second step: p = sigmoid(0.5) for both, grad = -(1 - sigmoid(0.5)), w = 0.5 + (1 - sigmoid(0.5))
    second = 0.5 + (1 - 1 / (1 + math.exp(-0.5)))
    assert math.isclose(fit_logistic(x, y, l2=0.0, steps=2, lr=1.0)[0], second)
    # l2 pulls towards 0: one step from 0 is unaffected, the second is shrunk by lr * l2 * w
    assert math.isclose(fit_logistic(x, y, l2=0.1, steps=2, lr=1.0)[0], second - 0.1 * 0.5)


def test_bag_of_words_learns_a_shortcut():
    chosen = [f"Certainly, topic {i} explained well." for i in range(20)]
    rejected = [f"Topic {i} explained well." for i in range(20)]
    model = BagOfWordsBaseline.fit(chosen, rejected)
    assert model.weights[model.vocabulary["certainly"]] > 0
    assert model.accuracy(["Certainly, new thing."], ["New thing."]) == 1.0
    assert model.accuracy(["Plain answer here."], ["Plain answer here."]) == 0.5  # nothing to tell them apart


def test_words():
    assert words("It's 3 O'Clock, OK?") == ["it's", "3", "o'clock", "ok"]
