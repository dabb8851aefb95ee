"""`chatalign sft` end to end on a tiny random model: run directory, HF model, report, errors, dry run."""

import json

import torch

from chatalign.cli.main import main

from .conftest import conversations


def test_sft_run_writes_a_loadable_model_and_report(recipe, tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    assert main(["sft", "--config", str(recipe), "--no-progress"]) == 0
    run = tmp_path / "runs" / "sft"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["stage"] == "sft"
    assert len(manifest["inputs"]["train"]["sha256"]) == 64
    assert manifest["metrics"]["data_rows"] == 12
    assert "eval_pass_rate" in manifest["metrics"] and "base_reference_nll" in manifest["metrics"]
    steps = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == list(range(1, manifest["metrics"]["steps"] + 1))
    assert (run / "model" / "model.safetensors").is_file()
    model = AutoModelForCausalLM.from_pretrained(run / "model")
    assert model.config.num_hidden_layers == 2
    assert (run / "loss.png").stat().st_size > 1000
    report = (run / "report.md").read_text()
    assert "Held-out evaluation" in report and "loss.png" in report
    # a second run into a finished directory is refused with a clear message
    assert main(["sft", "--config", str(recipe), "--no-progress"]) == 2
    assert "already holds a finished" in capsys.readouterr().err


def test_dry_run_prints_config_and_token_stats(recipe, capsys):
    assert main(["sft", "--config", str(recipe), "--dry-run", "train.seq_len=64"]) == 0
    out = capsys.readouterr().out
    assert "seq_len: 64" in out and '"trained_tokens"' in out and "dry run: config and data are valid" in out


def test_config_typo_is_one_line_exit_2(recipe, capsys):
    assert main(["sft", "--config", str(recipe), "optim.lrr=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "optim.lrr: unknown key" in err and "Traceback" not in err


def test_bad_data_row_names_file_line_field(recipe, tmp_path, capsys):
    train = tmp_path / "data" / "train.jsonl"
    lines = train.read_text().splitlines()
    lines[3] = json.dumps({"messages": [{"role": "robot", "content": "hi"}]})
    train.write_text("\n".join(lines) + "\n")
    assert main(["sft", "--config", str(recipe), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "train.jsonl:4: messages.0.role" in err and "Traceback" not in err


def test_extra_files_train_beside_the_main_one_each_capped(recipe, tmp_path, capsys):
    extra = tmp_path / "data" / "extra.jsonl"
    extra.write_text("".join(json.dumps({**r, "id": f"x{r['id']}"}) + "\n" for r in conversations(7)))
    assert main(["sft", "--config", str(recipe), "--dry-run",
                 'data.extra=[{path: data/extra.jsonl, max_rows: 5}]']) == 0
    stats = json.loads(capsys.readouterr().out.split("# data\n")[1].split("\ndry run")[0])
    assert stats["rows"] == 12 + 5


def test_a_bad_row_in_an_extra_file_names_that_file(recipe, tmp_path, capsys):
    extra = tmp_path / "data" / "extra.jsonl"
    extra.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    assert main(["sft", "--config", str(recipe), "--dry-run", "data.extra=[{path: data/extra.jsonl}]"]) == 2
    err = capsys.readouterr().err
    assert "extra.jsonl:1" in err and "Traceback" not in err


def test_trainable_layers_train_only_the_top_of_the_model(recipe, tmp_path, tiny_model_dir):
    from safetensors.torch import load_file

    assert main(["sft", "--config", str(recipe), "train.trainable_layers=1", "--no-progress"]) == 0
    before = load_file(str(next(tiny_model_dir.glob("*.safetensors"))))
    after = load_file(str(tmp_path / "runs" / "sft" / "model" / "model.safetensors"))
    top = max(int(k.split(".")[2]) for k in before if k.startswith("model.layers."))
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith((f"model.layers.{top}.", "model.norm.")) for k in changed)
    assert not any(k.startswith("model.embed_tokens") for k in changed)


def test_trainable_layers_with_lora_is_refused_naming_both(recipe, capsys):
    assert main(["sft", "--config", str(recipe), "train.trainable_layers=1", "lora.enabled=true", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "train.trainable_layers" in err and "lora.enabled" in err and "Traceback" not in err
