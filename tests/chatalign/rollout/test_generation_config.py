"""`generation.backend`: native by default; vllm named in a one-line error where vLLM is not installed."""

from __future__ import annotations

import importlib.util

import pytest

from chatalign.cli.main import main


def test_native_is_the_default_backend():
    from chatalign.rollout.generation_config import GenerationConfig

    assert GenerationConfig().backend == "native"


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="this environment has vLLM")
def test_vllm_backend_without_vllm_names_the_key_and_the_extra(capsys):
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[3] / "recipes" / "quickstart" / "rlhf_round.yaml"
    assert main(["rlhf", "round", "--config", str(recipe), "generation.backend=vllm", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "generation.backend: vllm needs vLLM" in err and "chatalign[vllm]" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 3


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="this environment has vLLM")
def test_chat_with_the_vllm_backend_without_vllm_is_one_line(capsys):
    assert main(["chat", "embedded", "--backend", "vllm", "--prompt", "Hi"]) == 2
    err = capsys.readouterr().err
    assert "chat --backend vllm needs vLLM" in err and "chatalign[vllm]" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="this environment has vLLM")
@pytest.mark.parametrize("stage,recipe", [("gatt", "gatt.yaml"), ("safety", "safety.yaml")])
def test_the_derived_stages_name_the_missing_extra_too(capsys, stage, recipe):
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "recipes" / "quickstart" / recipe
    assert main([stage, "--config", str(path), "generation.backend=vllm", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "generation.backend: vllm needs vLLM" in err and "Traceback" not in err
