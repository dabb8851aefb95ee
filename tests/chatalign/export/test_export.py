"""`chatalign export`: a finished run becomes a folder that `from_pretrained` loads, with a model card the Hub
library parses (metadata, lineage back to the start model, data hashes, metrics, how to load); the push goes
through huggingface_hub, which here (offline) refuses at its first call: one line, the folder kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
QS = ROOT / "data" / "quickstart"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chatalign.cli", *args], capture_output=True, text=True,
                          timeout=300, env=ENV, cwd=cwd)


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory, tiny_model_dir):
    d = tmp_path_factory.mktemp("export_runs")
    sft = {"stage": "sft", "output_dir": str(d / "sft"), "model": {"name": str(tiny_model_dir), "dtype": "float32"},
           "data": {"train": str(QS / "sft_train.jsonl"), "max_rows": 6},
           "train": {"epochs": 1, "seq_len": 96, "global_batch_rows": 2}, "optim": {"lr": 1e-3},
           "eval": {"max_prompts": 0}}
    rm = {"stage": "reward", "kind": "helpfulness", "output_dir": str(d / "rm"),
          "model": {"name": str(d / "sft"), "dtype": "float32"},
          "data": {"sources": [{"path": str(QS / "pref_helpful_train.jsonl"), "name": "h"}], "total": 8},
          "train": {"global_batch_pairs": 4, "max_seq_len": 96, "row_tokens": 256, "epochs": 1},
          "optim": {"lr": 1e-3, "warmup_ratio": 0.0}, "eval": {"max_pairs": 4}}
    for name, body in (("sft", sft), ("reward", rm)):
        (d / f"{name}.yaml").write_text(yaml.safe_dump(body))
        proc = cli(name, "--config", str(d / f"{name}.yaml"), "--no-progress", cwd=d)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return d


def test_export_writes_a_loadable_model_with_a_card_the_hub_library_parses(finished_runs, tmp_path):
    from huggingface_hub import ModelCard
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    out = tmp_path / "hub-sft"
    proc = cli("export", str(finished_runs / "sft"), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert AutoModelForCausalLM.from_pretrained(out).config.num_hidden_layers == 2
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-generation"
    assert "chatalign" in card.data.tags and "sft" in card.data.tags
    manifest = json.loads((finished_runs / "sft" / "manifest.json").read_text())
    assert manifest["config_hash"] in card.text and manifest["inputs"]["train"]["sha256"][:16] in card.text
    assert f"{manifest['metrics']['final_loss']:.4g}" in card.text and "AutoModelForCausalLM" in card.text

    out = tmp_path / "hub-rm"
    assert cli("export", str(finished_runs / "rm"), "--out", str(out), cwd=tmp_path).returncode == 0
    card = ModelCard.load(out / "README.md")
    assert card.data.pipeline_tag == "text-classification" and "end_of_chat_template" in card.text
    assert str(finished_runs / "sft") in card.text  # lineage: the RM started from the SFT run
    assert AutoModelForSequenceClassification.from_pretrained(out).config.num_labels == 1


def test_push_without_the_hub_is_one_line_and_keeps_the_folder(finished_runs, tmp_path):
    out = tmp_path / "hub"
    proc = cli("export", str(finished_runs / "sft"), "--out", str(out), "--push-to-hub", "me/tiny", cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("chatalign: error: push to me/tiny failed:"), last
    assert (out / "README.md").is_file() and (out / "model.safetensors").is_file()


def test_an_unfinished_or_modelless_directory_is_refused(tmp_path):
    proc = cli("export", str(tmp_path), "--out", str(tmp_path / "x"), cwd=tmp_path)
    assert proc.returncode == 2 and "not a run directory" in proc.stderr.strip().splitlines()[-1]
