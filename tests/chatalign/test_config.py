import pytest

from chatalign.config import (
    AbsoluteRecipePath,
    ModelRef,
    RecipePath,
    RunPath,
    StrictModel,
    apply_overrides,
    load_config,
    parse_override,
    resolve_path,
)
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


# -- path fields: resolved while validating, from the recipe's folder ------------------------------------------
class Paths(StrictModel):
    data: RecipePath
    files: list[RecipePath] = []
    optional: RecipePath | None = None
    recipe: AbsoluteRecipePath = "."
    model: ModelRef = "embedded"
    output_dir: RunPath = "runs/x"


def test_each_kind_of_path_resolves_as_its_type_says(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "real").mkdir()
    (tmp_path / "sub" / "link").symlink_to(tmp_path / "real")
    p = write(tmp_path / "sub", "data: d.jsonl\nfiles: [../a.jsonl, /abs/b.jsonl]\nrecipe: link/../x.yaml\n"
                                "model: ./models/m\noutput_dir: runs/here\n")
    cfg = load_config(Paths, p)
    base = tmp_path / "sub"
    assert cfg.data == f"{base}/d.jsonl"
    assert cfg.files == [f"{base}/../a.jsonl", "/abs/b.jsonl"]  # relative to the recipe, not normalised
    assert cfg.optional is None
    assert cfg.recipe == str(tmp_path / "x.yaml")  # absolute: the symlink followed, `..` gone
    assert cfg.model == f"{base}/models/m"  # a model written ./ is a path beside the recipe
    assert cfg.output_dir == "runs/here"  # run directories stay relative to the current directory
    hub = load_config(Paths, p, ["model=org/name"])
    assert hub.model == "org/name"  # a hub id or a bare run directory is not a recipe path


def test_values_are_applied_as_typed_and_before_the_overrides(tmp_path):
    p = write(tmp_path, "data: d.jsonl\n")
    cfg = load_config(Paths, p, ["output_dir=runs/b"], values={"output_dir": "runs/a", "optional": "o.jsonl"})
    assert cfg.output_dir == "runs/b" and cfg.optional == f"{tmp_path}/o.jsonl"


@pytest.mark.parametrize("key,value", [("data", "~/d.jsonl"), ("files", ["ok.jsonl", "$HOME/x"]),
                                       ("recipe", "{{ r }}.yaml"), ("model", "~/m"), ("model", "./$M"),
                                       ("output_dir", "~/runs")])
def test_expansion_is_refused_naming_the_key(key, value, tmp_path):
    p = write(tmp_path, "data: d.jsonl\n")
    where = f"{key}.1" if isinstance(value, list) else key
    bad = value[1] if isinstance(value, list) else value
    with pytest.raises(ConfigError) as err:
        load_config(Paths, p, values={key: value})
    assert str(err.value) == (f"{p}: {where}: path {bad!r}: shell expansion and templates are not allowed in "
                              "recipe paths")


def test_without_a_recipe_folder_paths_are_kept_as_given():
    # a config rebuilt from a manifest (already resolved) or built in code: nothing to resolve against
    cfg = Paths.model_validate({"data": "d.jsonl", "model": "./m", "output_dir": "~/runs"})
    assert (cfg.data, cfg.model, cfg.output_dir) == ("d.jsonl", "./m", "~/runs")
    cfg.data = "e.jsonl"  # assignment is validated too, with no context: kept
    assert cfg.data == "e.jsonl"


def test_unknown_key_suggests_the_nearest_and_an_override_is_blamed_not_the_recipe():
    from pathlib import Path

    from chatalign.config import load_config
    from chatalign.sft.config import SFTConfig

    recipe = Path(__file__).resolve().parents[2] / "recipes" / "quickstart" / "sft.yaml"
    with pytest.raises(ConfigError) as exc:
        load_config(SFTConfig, recipe, ["optim.lrr=1e-5"])
    assert str(exc.value) == "override optim.lrr=1e-5: optim.lrr: unknown key (did you mean optim.lr?)"
    with pytest.raises(ConfigError) as exc:
        load_config(SFTConfig, recipe, ["trian.epochs=1"])
    assert str(exc.value) == "override trian.epochs=1: trian: unknown key (did you mean train?)"
    with pytest.raises(ConfigError) as exc:
        load_config(SFTConfig, recipe, ["optim.lr=fast"])
    assert str(exc.value).startswith("override optim.lr=fast: optim.lr: Input should be a valid number")
