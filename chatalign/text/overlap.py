"""Near-duplicate texts between evaluation data and training data (decontamination).

An evaluation set only measures transfer if none of its prompts or answers was trained on. Exact matching misses
"How do I hard-boil eggs so they peel easily?" against "How do I hard boil eggs so they peel easily?", so texts are
compared by the Jaccard similarity of their lowercased word 3-grams, the usual n-gram decontamination check
(e.g. GPT-3, Brown et al. 2020, appendix C, with 13-grams over long documents; short prompts need short n-grams).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatalign.errors import UserError

# Keys whose values are labels, not text a model sees.
LABEL_KEYS = frozenset({"id", "source", "tags", "check", "category", "strength", "risk_category"})
DEFAULT_THRESHOLD = 0.75

Trigram = tuple[str, str, str]


@dataclass(frozen=True)
class Located:
    path: str
    line: int
    text: str


@dataclass(frozen=True)
class Overlap:
    similarity: float
    eval_text: Located
    train_text: Located


def word_trigrams(text: str) -> frozenset[Trigram]:
    """Lowercased word 3-grams; hyphens split words ("hard-boil" = "hard boil"); empty under 3 words."""
    words = re.findall(r"\w+", text.lower().replace("-", " "))
    return frozenset(zip(words, words[1:], words[2:]))


def jaccard(a: frozenset, b: frozenset) -> float:
    """|a & b| / |a | b|; 0 for two empty sets."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def texts_of(value: Any) -> Iterator[str]:
    """Every string a model would see in a JSON row (messages, prompts, answers, turns), not its labels."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in LABEL_KEYS:
                yield from texts_of(item)
    elif isinstance(value, list):
        for item in value:
            yield from texts_of(item)


def data_files(paths: Iterable[str | Path]) -> list[Path]:
    """The .jsonl files named, or found under the folders named."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(path.rglob("*.jsonl"))
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"{path}: no such file or folder")
    return files


def located_texts(files: Iterable[Path]) -> list[Located]:
    out = []
    for path in files:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise UserError(f"{path}:{number}: not a JSON line ({err.msg})") from None
                out += [Located(str(path), number, text) for text in texts_of(row) if word_trigrams(text)]
    return out


def find_overlaps(eval_texts: list[Located], train_texts: list[Located],
                  threshold: float = DEFAULT_THRESHOLD) -> list[Overlap]:
    """Pairs (evaluation text, training text) whose word-3-gram Jaccard is >= threshold, most similar first."""
    train_grams = [word_trigrams(t.text) for t in train_texts]
    index: dict[Trigram, list[int]] = defaultdict(list)
    for i, grams in enumerate(train_grams):
        for gram in grams:
            index[gram].append(i)
    found = []
    for item in eval_texts:
        grams = word_trigrams(item.text)
        candidates = {i for gram in grams for i in index.get(gram, ())}
        for i in candidates:
            similarity = jaccard(grams, train_grams[i])
            if similarity >= threshold:
                found.append(Overlap(round(similarity, 4), item, train_texts[i]))
    return sorted(found, key=lambda o: (-o.similarity, o.eval_text.path, o.eval_text.line))
