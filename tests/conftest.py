"""Shared fixtures: the embedded tokenizer (real) and tiny random-init Llamas that share its vocabulary."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def _torch_on_one_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core machine the threads of
    concurrent processes spin against each other (a tiny training step went from 0.1 s to 2 s). torch is
    imported here, not at the top: pure tests must not pay for importing it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# for the modules that ask for it (`pytestmark = pytest.mark.usefixtures("one_torch_thread")`)
one_torch_thread = pytest.fixture(scope="module", name="one_torch_thread")(_torch_on_one_thread)
# for folders whose conftest turns it on for the rest of the session (an autouse fixture that requests it)
one_torch_thread_session = pytest.fixture(scope="session", name="one_torch_thread_session")(_torch_on_one_thread)


@pytest.fixture(scope="session")
def embedded_dir():
    from chatalign.embedded import embedded_model_dir

    return embedded_model_dir()


@pytest.fixture(scope="session")
def smol_tokenizer(embedded_dir):
    from chatalign.models import load_tokenizer

    return load_tokenizer(str(embedded_dir))


@pytest.fixture()
def tiny_model(smol_tokenizer):
    from chatalign.models import tiny_llama

    return tiny_llama(smol_tokenizer)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, smol_tokenizer):
    """A tiny random Llama saved as an HF directory (safetensors + tokenizer), like a user's model."""
    from chatalign.models import save_hf_atomic, tiny_llama

    d = tmp_path_factory.mktemp("tiny") / "model"
    save_hf_atomic(tiny_llama(smol_tokenizer), smol_tokenizer, d)
    return d


# CI replays a fixed set of hypothesis examples so that main stays green on a random draw; local runs
# keep exploring new examples (a failure found there becomes a regression test).
try:
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, print_blob=True)
    if os.environ.get("CI"):
        settings.load_profile("ci")
except ImportError:  # hypothesis is a dev extra
    pass
