"""Hub dataset ids as data keys (`hf://datasets/OWNER/NAME?split=&columns=`), read by `datasets.load_dataset`
from the local `datasets` cache with the Hub offline, as a user without network (or with a filled cache) has it."""

from __future__ import annotations

import json
import shutil

import pytest

from chatalign.data_schemas import BadDataError, load_records
from chatalign.data_schemas.hub import hub_fingerprint, parse_hub_spec

ROWS = [{"question": "Give three tips for staying healthy.", "answer": "Eat well, move, sleep."},
        {"question": "Translate 'good morning' to French.", "answer": "Bonjour."},
        {"question": "What is 2 + 2?", "answer": "4"}]


@pytest.fixture()
def hub_cache(tmp_path, monkeypatch):
    """The cache a `load_dataset("someone/tiny_qa")` download leaves (someone___tiny_qa/default/0.0.0/<hash>),
    built by datasets' own json builder from a local file; then the Hub is switched off."""
    from datasets.packaged_modules.json.json import Json

    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    cache = tmp_path / "hf_datasets"
    Json(cache_dir=str(cache), dataset_name="tiny_qa", data_files={"train": str(src)}, hash="0123abcd") \
        .download_and_prepare()
    (config_dir,) = (cache / "tiny_qa").iterdir()
    target = cache / "someone___tiny_qa" / "default"
    target.parent.mkdir()
    shutil.move(str(config_dir), str(target))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)  # read at import: the env alone is late
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    return cache


def test_spec_parts_and_malformed_specs():
    src = parse_hub_spec("hf://datasets/org/set@v1.0?split=test&config=en&columns=q:instruction,a:output")
    assert (src.repo, src.revision, src.split, src.config) == ("org/set", "v1.0", "test", "en")
    assert src.columns == (("q", "instruction"), ("a", "output"))
    assert parse_hub_spec("hf://datasets/org/set").split == "train"
    for bad, problem in (("hf://datasets/justname", "not a Hub dataset"), ("hf://datasets/o/s?splt=x", "splt"),
                         ("hf://datasets/o/s?columns=q", "SRC:DST")):
        with pytest.raises(BadDataError, match=problem):
            parse_hub_spec(bad)


def test_a_cached_hub_dataset_loads_with_its_columns_mapped(hub_cache):
    spec = "hf://datasets/someone/tiny_qa?columns=question:instruction,answer:output"
    records = load_records(spec, "conversation").records
    assert [(m.role, m.content) for m in records[1].messages] == [
        ("user", "Translate 'good morning' to French."), ("assistant", "Bonjour.")]
    assert len(records) == 3
    assert hub_fingerprint(spec).startswith("datasets:")


def test_hub_problems_name_the_dataset_and_row(hub_cache):
    with pytest.raises(BadDataError, match=r"no column quest \(the dataset has question, answer\)"):
        load_records("hf://datasets/someone/tiny_qa?columns=quest:instruction", "conversation")
    with pytest.raises(BadDataError, match="Unknown split"):
        load_records("hf://datasets/someone/tiny_qa?split=test", "conversation")
    with pytest.raises(BadDataError, match="someone/missing.*could not load it"):
        load_records("hf://datasets/someone/missing", "conversation")
    with pytest.raises(BadDataError) as err:  # unmapped columns: the adapter cannot read the row, row 1 named
        load_records("hf://datasets/someone/tiny_qa", "conversation")
    assert "hf://datasets/someone/tiny_qa:row 1: question: unknown field" in str(err.value)


def test_a_recipe_data_key_takes_a_hub_id_unresolved(hub_cache, tmp_path):
    from chatalign.config import load_config
    from chatalign.runs import RunDir
    from chatalign.sft.config import SFTConfig

    spec = "hf://datasets/someone/tiny_qa?columns=question:instruction,answer:output"
    recipe = tmp_path / "sft.yaml"
    recipe.write_text(f"stage: sft\noutput_dir: runs/x\nmodel: {{name: embedded}}\ndata: {{train: '{spec}'}}\n")
    cfg = load_config(SFTConfig, str(recipe))
    assert cfg.data.train == spec  # not made relative to the recipe's folder
    run = RunDir(tmp_path / "run", "sft")
    run.lock()
    manifest = run.start(cfg.model_dump(mode="json"), {"train": cfg.data.train})
    assert manifest["inputs"]["train"] == {"path": spec, "sha256": hub_fingerprint(spec)}
    run.unlock()
