import pytest

from chatalign.config import apply_overrides, load_config, parse_override, resolve_path
from chatalign.errors import ConfigError
from chatalign.sft.config import SFTConfig


def write(tmp_path, text, name="r.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_overrides_parse_yaml_values():
    assert parse_override("optim.lr=1e-4") == (["optim", "lr"], 1e-4)
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
    assert apply_overrides({"a": {"b": 1}}, ["a.c=x", "d.e=true"]) == {"a": {"b": 1, "c": "x"}, "d": {"e": True}}
    with pytest.raises(ConfigError, match="expected key.sub=value"):
        parse_override("nokey")


def test_unknown_key_is_named(tmp_path):
    p = write(tmp_path, "data: {train: x.jsonl}\noptim: {lrr: 1.0}\n")
    with pytest.raises(ConfigError, match=r"r.yaml: optim.lrr: unknown key"):
        load_config(SFTConfig, p)


def test_wrong_type_is_named(tmp_path):
    p = write(tmp_path, "data: {train: x.jsonl}\n")
    with pytest.raises(ConfigError, match=r"train.epochs: .*integer"):
        load_config(SFTConfig, p, ["train.epochs=two"])


def test_missing_required_key(tmp_path):
    p = write(tmp_path, "output_dir: runs/x\n")
    with pytest.raises(ConfigError, match=r"data: Field required"):
        load_config(SFTConfig, p)


def test_impossible_batch_combination(tmp_path):
    p = write(tmp_path, "data: {train: x.jsonl}\ntrain: {global_batch_rows: 10, micro_batch_rows: 4}\n")
    with pytest.raises(ConfigError, match="multiple of"):
        load_config(SFTConfig, p)


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(SFTConfig, tmp_path / "nope.yaml")
    p = write(tmp_path, "data: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(SFTConfig, p)
    p = write(tmp_path, "- a list\n", "list.yaml")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(SFTConfig, p)


def test_data_paths_are_relative_to_recipe(tmp_path):
    (tmp_path / "sub").mkdir()
    p = write(tmp_path / "sub", "data: {train: ../d/train.jsonl}\n")
    cfg = load_config(SFTConfig, p)
    assert cfg.data.train == str(tmp_path / "sub" / "../d/train.jsonl")


@pytest.mark.parametrize("bad", ["$HOME/x", "~/x", "{{ evil }}"])
def test_paths_cannot_expand(bad, tmp_path):
    with pytest.raises(ConfigError, match="not allowed"):
        resolve_path(bad, tmp_path)


def test_yaml_is_safe_loaded(tmp_path):
    p = write(tmp_path, "data: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(SFTConfig, p)
