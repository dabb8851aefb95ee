"""Shared fixtures: the embedded tokenizer (real) and tiny random-init Llamas that share its vocabulary.

`tiny_llama` and `reward_model_from_causal_lm` are plain functions as well as the fixtures' makers: test
folders' conftests call them (`from ..conftest import tiny_llama`), and so do subprocess workers, which put
the repo root on sys.path and import `tests.conftest`."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# a process killed by a fatal signal (a C++ abort in a rank) prints every thread's Python stack
os.environ.setdefault("PYTHONFAULTHANDLER", "1")


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


def tiny_llama(tokenizer, hidden: int = 64, layers: int = 2, heads: int = 4, kv_heads: int = 2, seed: int = 0):
    """A random-init Llama sharing `tokenizer`'s vocabulary, drawn after torch.manual_seed(seed) (tests want
    the same weights whatever ran before them)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                      num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                      max_position_embeddings=2048, tie_word_embeddings=True,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(cfg)


def reward_model_from_causal_lm(lm, seed: int = 0):
    """The RM of an in-memory causal LM: its decoder weights copied, a fresh head drawn after
    torch.manual_seed(seed)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    config = lm.config.__class__.from_dict(lm.config.to_dict())
    config.num_labels = 1
    config.architectures = None
    torch.manual_seed(seed)
    rm = AutoModelForSequenceClassification.from_config(config)
    getattr(rm, rm.base_model_prefix).load_state_dict(getattr(lm, lm.base_model_prefix).state_dict())
    return rm.to(next(lm.parameters()).dtype)


@pytest.fixture()
def tiny_model(smol_tokenizer):
    return tiny_llama(smol_tokenizer)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, smol_tokenizer):
    """A tiny random Llama saved as an HF directory (safetensors + tokenizer), like a user's model."""
    from chatalign.models import save_hf_atomic

    d = tmp_path_factory.mktemp("tiny") / "model"
    save_hf_atomic(tiny_llama(smol_tokenizer), smol_tokenizer, d)
    return d



@pytest.fixture(scope="session")
def tiny_rm_dir(tmp_path_factory, smol_tokenizer):
    """A random-init scalar-head RM (LlamaForSequenceClassification, num_labels=1) saved like a reward run's
    model, as the RLHF and safety stages read it."""
    from chatalign.reward.model import save_reward_model

    tok = smol_tokenizer.__class__.from_pretrained(smol_tokenizer.name_or_path)  # save_reward_model edits pad
    tok.pad_token = smol_tokenizer.pad_token
    rm = reward_model_from_causal_lm(tiny_llama(smol_tokenizer, seed=3), seed=4)
    d = tmp_path_factory.mktemp("tiny_rm") / "rm"
    save_reward_model(rm, tok, d)
    return d


# -- launching ranks ------------------------------------------------------------------------------------------
def torchrun() -> str | None:
    """The torchrun of this environment (beside its Python), else the one on PATH; None when not installed."""
    local = Path(sys.executable).with_name("torchrun")
    return str(local) if local.exists() else shutil.which("torchrun")


requires_torchrun = pytest.mark.skipif(torchrun() is None, reason="torchrun is not installed")


def free_port() -> int:
    """A TCP port the OS reports free now: each launch gets its own, so tests run in parallel (or beside a job
    that holds a fixed port) do not meet on one master port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_command(*args: str, nproc: int = 2) -> list[str]:
    """`torchrun --nproc_per_node N --master_port <a free port> ARGS...`."""
    return [torchrun() or "torchrun", "--nproc_per_node", str(nproc), "--master_port", str(free_port()), *args]


# CI replays a fixed set of hypothesis examples so that main stays green on a random draw; local runs
# keep exploring new examples (a failure found there becomes a regression test).
try:
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, print_blob=True)
    if os.environ.get("CI"):
        settings.load_profile("ci")
except ImportError:  # hypothesis is a dev extra
    pass


def stage_command(name: str, recipe, overrides=(), dry_run: bool = False, resume: bool = False) -> int:
    """`chatalign <name> --config <recipe> [overrides] [--dry-run] [--resume] --no-progress` as the CLI runs it
    (the stage's `command`), with its errors raised rather than turned into exit codes."""
    import argparse

    from chatalign import registry

    args = argparse.Namespace(config=str(recipe), overrides=list(overrides), dry_run=dry_run, resume=resume,
                              no_progress=True)
    return registry.get(name).command(args)


def pytest_terminal_summary(terminalreporter, config):
    """The random test order's seed on the last lines too (pytest -q hides the header that names it)."""
    seed = getattr(config.option, "randomly_seed", None)
    if config.pluginmanager.hasplugin("randomly") and isinstance(seed, int):
        terminalreporter.write_line(f"test order: rerun it with --randomly-seed={seed} (-p no:randomly: file order)")
