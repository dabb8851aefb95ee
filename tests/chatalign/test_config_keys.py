"""`--show-keys` lists real keys: every key it prints for a stage, set to the default it prints (all at once: the
defaults agree with each other, not always with a recipe's other values), is accepted as an override of that
stage's quickstart recipe and gives the class's own defaults back; and it works without --config."""

from pathlib import Path

import pytest

from chatalign.cli.main import main
from chatalign.config import load_config
from chatalign.config_keys import config_keys

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("stage, recipe", [("sft", "sft.yaml"), ("reward", "reward_helpful.yaml"),
                                           ("rlhf", "rlhf_round.yaml"), ("gatt", "gatt.yaml"),
                                           ("safety", "safety.yaml"), ("dpo", "dpo.yaml")])
def test_every_listed_key_with_its_listed_default_is_a_valid_override(stage, recipe):
    from chatalign import registry

    cls = registry.get(stage).config_class()
    rows = config_keys(cls)
    assert len(rows) > 20 and "output_dir" in [k for k, *_ in rows]
    overrides = [f"{key}={default}" for key, _, default, _ in rows
                 if default not in ("", "(required)") and key != "stage"]
    cfg = load_config(cls, ROOT / "recipes" / "quickstart" / recipe, overrides)
    for key, _, default, _ in rows:
        if default not in ("", "(required)") and key != "stage":
            value = cfg
            for part in key.split("."):
                value = getattr(value, part)
            assert config_keys_default(value) == default, key


def config_keys_default(value) -> str:
    import json

    return json.dumps(list(value) if isinstance(value, tuple) else value, default=str)


def test_show_keys_needs_no_recipe(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sft", "--show-keys"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "optim.lr" in out and "float = 2e-05" in out and "train.seq_len" in out
