"""Fixtures of the evaluation tests: a tiny random-init model saved as an HF directory (two of them, different
weights), and a small independent-data folder written here (the real data/independent is not needed)."""

from __future__ import annotations

import pytest

from ...conftest import tiny_llama
from ...independent_fixture import write_independent_sets


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Tiny models gain nothing from intra-op threads on a shared machine."""


def _save(model, tokenizer, path):
    model.save_pretrained(str(path), safe_serialization=True)
    tokenizer.save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory, smol_tokenizer):
    """Two tiny Llama directories with the embedded tokenizer: seed 0 and seed 1."""
    root = tmp_path_factory.mktemp("tiny_models")
    return [_save(tiny_llama(smol_tokenizer, seed=s), smol_tokenizer, root / f"tiny{s}") for s in (0, 1)]


@pytest.fixture
def indep_dir(tmp_path):
    return write_independent_sets(tmp_path / "independent")
