"""`report_to` for real, offline: a tiny SFT run reports to TensorBoard, W&B (offline mode), MLflow (a file
store) and trackio (its local store); every tracker's own reader gets back the logged losses at their steps,
the run's config, and the final metrics."""

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


def tiny_sft(tmp_path: Path, model: Path, report_to: list[str]) -> Path:
    recipe = {"stage": "sft", "output_dir": str(tmp_path / "run"), "model": {"name": str(model), "dtype": "float32"},
              "data": {"train": str(QS / "sft_train.jsonl"), "max_rows": 8},
              "train": {"epochs": 1, "seq_len": 96, "global_batch_rows": 2, "seed": 0}, "optim": {"lr": 1e-3},
              "eval": {"max_prompts": 0}, "report_to": report_to,
              "tracking": {"project": "chatalign-test", "group": "tiny-pipeline"}}
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def wandb_offline_records(path: Path) -> list:
    """The records of an offline W&B run file (`run-*.wandb`), parsed with W&B's own protobuf messages. The file
    is a LevelDB-style log: a 7-byte header, then 32 KiB blocks of records, each with a 7-byte header (crc32,
    length, type: 1 whole, 2 first, 3 middle, 4 last part)."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data, pos, block, part, records = path.read_bytes(), 7, 32768, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(part + chunk)
            records.append(record)
            part = b""
        elif kind in (2, 3):
            part += chunk
    return records


def wandb_item(item) -> tuple[str, object]:
    return item.key or "/".join(item.nested_key), json.loads(item.value_json)


@pytest.mark.slow
def test_one_run_reaches_all_four_trackers_offline(tmp_path, tiny_model_dir, monkeypatch):
    # MLflow 3 keeps its file store only on request (the issue asks for one: no database server here)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("TRACKIO_DIR", str(tmp_path / "trackio"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true",
           "MLFLOW_TRACKING_URI": (tmp_path / "mlruns").as_uri()}
    recipe = tiny_sft(tmp_path, tiny_model_dir, ["tensorboard", "wandb", "mlflow", "trackio"])
    proc = subprocess.run([sys.executable, "-m", "chatalign.cli", "sft", "--config", str(recipe), "--no-progress"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    logged = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    losses = {r["step"]: r["loss"] for r in logged}
    assert len(losses) >= 3
    final = json.loads((run / "manifest.json").read_text())["metrics"]

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert {e.step: e.value for e in events.Scalars("loss")} == pytest.approx(losses)
    assert "config/text_summary" in events.Tags()["tensors"]

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    [mlrun] = client.search_runs([client.get_experiment_by_name("chatalign-test").experiment_id])
    assert mlrun.info.run_name == "run" and mlrun.info.status == "FINISHED"
    assert mlrun.data.tags["chatalign.group"] == "tiny-pipeline" and mlrun.data.params["optim.lr"] == "0.001"
    history = {m.step: m.value for m in client.get_metric_history(mlrun.info.run_id, "loss")}
    assert history == pytest.approx(losses)
    assert mlrun.data.metrics["final.final_loss"] == pytest.approx(final["final_loss"])

    from trackio.sqlite_storage import SQLiteStorage

    rows = SQLiteStorage.get_logs("chatalign-test", "run")
    assert {r["step"]: r["loss"] for r in rows if "loss" in r} == pytest.approx(losses)

    [offline] = list((run / "wandb").glob("offline-run-*/run-*.wandb"))
    records = wandb_offline_records(offline)
    history = [dict(map(wandb_item, r.history.item)) for r in records if r.WhichOneof("record_type") == "history"]
    assert {h["_step"]: h["loss"] for h in history} == pytest.approx(losses)
    [header] = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    config = dict(map(wandb_item, header.config.update))
    assert config["config"]["optim"]["lr"] == 0.001 and config["stage"] == "sft"
    assert header.run_group == "tiny-pipeline" and header.project == "chatalign-test" and header.display_name == "run"
    summary = {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            summary.update(map(wandb_item, r.summary.update))
    assert summary["final_loss"] == pytest.approx(final["final_loss"])


@pytest.mark.slow
def test_a_tracker_that_cannot_start_stops_the_run_in_one_line(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)  # MLflow 3 then refuses its file store
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MLFLOW_TRACKING_URI": (tmp_path / "mlruns").as_uri()}
    recipe = tiny_sft(tmp_path, tiny_model_dir, ["tensorboard", "mlflow"])
    proc = subprocess.run([sys.executable, "-m", "chatalign.cli", "sft", "--config", str(recipe), "--no-progress"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("chatalign: error: report_to mlflow: could not start a run:"), last
