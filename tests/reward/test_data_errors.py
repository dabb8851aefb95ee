"""Bad preference rows through the reward stage: a clear error naming file, line and field, or, when the
recipe allows skipping, a quarantine file; custom formats (TRL, HH, UltraFeedback) work by naming the file."""

import json

import pytest

from chatalign.data_schemas import BadDataError
from chatalign.reward.run import prepare

from ..conftest import stage_command
from .conftest import TOPICS, toy_config, toy_rows, write_jsonl

BAD = [
    {"prompt": [{"role": "user", "content": "q"}], "chosen": "a"},  # no rejected
    {"prompt": [{"role": "user", "content": "q"}], "chosen": "  ", "rejected": "b"},  # empty answer
    {"prompt": [{"role": "user", "content": "q"}], "chosen": "same", "rejected": "same"},
    {"prompt": [{"role": "user", "content": "q"}], "chosen": "a", "rejected": "b", "strength": "much_better"},
]


@pytest.fixture()
def bad_file(tmp_path):
    rows = toy_rows(TOPICS[:6])
    return write_jsonl(tmp_path / "bad.jsonl", rows[:3] + BAD + rows[3:])  # bad rows on lines 4-7


def test_bad_rows_raise_with_file_line_and_field(tmp_path, bad_file, tiny_model_dir):
    cfg = toy_config(tmp_path, bad_file, bad_file, model=tiny_model_dir)
    with pytest.raises(BadDataError) as err:
        prepare(cfg)
    text = str(err.value)
    assert f"{bad_file}:4: rejected" in text
    assert f"{bad_file}:5: chosen" in text and "empty" in text
    assert f"{bad_file}:6: rejected" in text and "identical to chosen" in text
    assert f"{bad_file}:7: strength" in text


def test_skip_puts_bad_rows_in_quarantine(tmp_path, bad_file, toy_files, tiny_model_dir):
    _, held = toy_files
    cfg = toy_config(tmp_path, bad_file, held, model=tiny_model_dir)
    cfg.data.on_error = "skip"
    prep = prepare(cfg)
    src = prep.stats["sources"]["toy"]
    assert src["rows_skipped"] == 4 and src["usable"] == 6
    quarantine = tmp_path / "run" / "quarantine" / "train-toy.jsonl"
    assert src["quarantine"] == str(quarantine)
    lines = [json.loads(x) for x in quarantine.read_text().splitlines()]
    assert len(lines) == 4


def test_outside_formats_by_file_name_only(tmp_path, tiny_model_dir, toy_files):
    trl = [{"prompt": f"Tell me about {t}.", "chosen": f"I love {t}.", "rejected": f"I hate {t}."} for t in TOPICS[:4]]
    hh = [{"chosen": f"\n\nHuman: Tell me about {t}.\n\nAssistant: I love {t}.",
           "rejected": f"\n\nHuman: Tell me about {t}.\n\nAssistant: I hate {t}."} for t in TOPICS[4:8]]
    uf = [{"prompt": f"About {t}?", "chosen": f"I love {t}.", "rejected": f"I hate {t}.", "score_chosen": 9.0,
           "score_rejected": 9.0 - k} for k, t in enumerate(TOPICS[8:12])]
    _, held = toy_files
    cfg = toy_config(tmp_path, write_jsonl(tmp_path / "trl.jsonl", trl), held, model=tiny_model_dir)
    cfg.data.sources = [cfg.data.sources[0].model_copy(update={"name": "trl"}),
                        cfg.data.sources[0].model_copy(update={"name": "hh", "path": str(write_jsonl(
                            tmp_path / "hh.jsonl", hh))}),
                        cfg.data.sources[0].model_copy(update={"name": "uf", "path": str(write_jsonl(
                            tmp_path / "uf.jsonl", uf))})]
    stats = prepare(cfg).stats
    assert {k: v["format"] for k, v in stats["sources"].items() if not k.startswith("eval")} == \
        {"trl": "trl", "hh": "hh", "uf": "ultrafeedback"}
    assert stats["pairs"] == 12
    # TRL and HH pairs have no strength (-> default margin); UltraFeedback's come from the score gap
    assert stats["strengths"] == {"none": 8, "unsure": 1, "slightly_better": 1, "better": 1,
                                  "significantly_better": 1}


def test_dry_run_checks_config_and_data_without_training(tmp_path, toy_files, tiny_model_dir, capsys):
    import yaml

    train, held = toy_files
    cfg = toy_config(tmp_path, train, held, model=tiny_model_dir)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    assert stage_command("reward", recipe, ["train.global_batch_pairs=10"], dry_run=True) == 0
    out = capsys.readouterr().out
    assert "dry run: config and data are valid" in out and '"steps": 12' in out  # 30 pairs / 10 x 4 epochs
    assert not (tmp_path / "run").exists()
