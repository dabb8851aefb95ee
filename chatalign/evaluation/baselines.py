"""Trivial preference baselines, reported beside a reward model's pair accuracy so that a shortcut shows: if
"prefer the longer answer" or a bag of words ranks the pairs about as well as the RM, the RM may have learnt
the shortcut, not the substance.

  length        prefer the answer with more words (a tie counts half);
  bag-of-words  an L2-regularised logistic regression on the difference of the two answers' word sets,
                trained on the RM's own training pairs (numpy only), scoring each answer by its words.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def pair_accuracy(chosen_scores: Sequence[float], rejected_scores: Sequence[float]) -> float | None:
    """Share of pairs whose chosen answer scores higher; a tie counts half (a baseline that cannot tell is at 50%)."""
    if not chosen_scores:
        return None
    wins = sum(1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(chosen_scores, rejected_scores, strict=True))
    return wins / len(chosen_scores)


def length_accuracy(chosen: Sequence[str], rejected: Sequence[str]) -> float | None:
    """Pair accuracy of "prefer the longer answer" (in words)."""
    return pair_accuracy([len(words(t)) for t in chosen], [len(words(t)) for t in rejected])


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 300, lr: float = 0.5) -> np.ndarray:
    """Weights of a logistic regression without bias, by full-batch gradient descent on the mean log-loss plus
    l2/2 * |w|^2 (issue 19's bag-of-words baseline); x: [n, d], y in {0, 1}."""
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        w -= lr * (x.T @ (p - y) / len(y) + l2 * w)
    return w


@dataclass
class BagOfWordsBaseline:
    vocabulary: dict[str, int]
    weights: np.ndarray

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """1 where a vocabulary word occurs in the text (presence, not counts: a longer answer gains nothing)."""
        out = np.zeros((len(texts), len(self.vocabulary)))
        for i, text in enumerate(texts):
            for w in set(words(text)):
                j = self.vocabulary.get(w)
                if j is not None:
                    out[i, j] = 1.0
        return out

    def scores(self, texts: Sequence[str]) -> list[float]:
        return (self.features(texts) @ self.weights).tolist()

    def accuracy(self, chosen: Sequence[str], rejected: Sequence[str]) -> float | None:
        return pair_accuracy(self.scores(chosen), self.scores(rejected))

    @classmethod
    def fit(cls, chosen: Sequence[str], rejected: Sequence[str], vocabulary_size: int = 2000,
            l2: float = 1e-3, steps: int = 300) -> BagOfWordsBaseline:
        """Trained on pairs: each pair once as (chosen - rejected, 1) and once as (rejected - chosen, 0)."""
        counts = Counter(w for text in [*chosen, *rejected] for w in set(words(text)))
        vocab = {w: i for i, (w, _) in enumerate(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                                                  [:vocabulary_size])}
        model = cls(vocab, np.zeros(len(vocab)))
        diff = model.features(chosen) - model.features(rejected)
        x = np.concatenate([diff, -diff])
        y = np.concatenate([np.ones(len(diff)), np.zeros(len(diff))])
        model.weights = fit_logistic(x, y, l2=l2, steps=steps) if len(vocab) else model.weights
        return model
