"""Integrity and security: lineage cannot lie (a resumed run refuses inputs whose content changed, unless
told to), nothing unpickles or runs code it was not asked to run, and recipe paths never expand."""

from __future__ import annotations

import ast
import json
import logging
import shutil
from pathlib import Path

import pytest

from chatalign.cli.main import main
from chatalign.config import load_config
from chatalign.errors import ConfigError

from .conftest import QS, ROOT, STAGES

PACKAGES = ["chatalign", "data_schemas", "sft", "reward", "rlhf", "gatt", "safety"]


def package_sources() -> list[Path]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    assert len(files) > 50, "the package sources were not found"
    return files


def calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            yield node, owner, name


def kwarg(node: ast.Call, name: str):
    for k in node.keywords:
        if k.arg == name:
            return k.value
    return None


def guarded_lines(tree: ast.AST) -> set[int]:
    """Lines inside a `with safe_deepspeed_load():` block."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.With) and any(
                isinstance(i.context_expr, ast.Call) and getattr(i.context_expr.func, "id", None) ==
                "safe_deepspeed_load" for i in node.items):
            out.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return out


def test_no_unsafe_deserialization_anywhere_in_the_package():
    """torch.load only with weights_only=True, no pickle/marshal/shelve/dill, yaml only through safe_load,
    no eval/exec, no trust_remote_code=True literal, DeepSpeed's `engine.load_checkpoint` only under
    `safe_deepspeed_load()`: checked on the syntax tree of every package file."""
    problems = []
    for path in package_sources():
        tree = ast.parse(path.read_text(), str(path))
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                bad = [m for m in mods if m.split(".")[0] in ("pickle", "cPickle", "dill", "marshal", "shelve",
                                                               "joblib", "cloudpickle")]
                if bad:
                    problems.append(f"{where}:{node.lineno}: imports {bad}")
        for node, owner, name in calls(tree):
            if name == "load" and owner == "torch":
                wo = kwarg(node, "weights_only")
                if not (isinstance(wo, ast.Constant) and wo.value is True):
                    problems.append(f"{where}:{node.lineno}: torch.load without weights_only=True")
            if owner == "yaml" and name in ("load", "load_all", "unsafe_load", "full_load", "full_load_all"):
                problems.append(f"{where}:{node.lineno}: yaml.{name} (use yaml.safe_load)")
            if isinstance(node.func, ast.Name) and name in ("eval", "exec"):
                problems.append(f"{where}:{node.lineno}: {name}()")
            if name == "load_checkpoint" and isinstance(node.func, ast.Attribute) and \
                    node.lineno not in guarded_lines(tree):
                problems.append(f"{where}:{node.lineno}: engine.load_checkpoint outside `with safe_deepspeed_load()` "
                                "(DeepSpeed unpickles with weights_only=False)")
            trc = kwarg(node, "trust_remote_code")
            if isinstance(trc, ast.Constant) and trc.value is True:
                problems.append(f"{where}:{node.lineno}: trust_remote_code=True hard-coded")
    assert not problems, "\n".join(problems)


def test_the_source_check_can_fail(tmp_path):
    """The checker above sees the patterns it looks for (a check that cannot fail proves nothing)."""
    bad = "import pickle\nimport torch, yaml\ntorch.load('x')\ntorch.load('x', weights_only=False)\n" \
          "yaml.load(s)\nm.from_pretrained(p, trust_remote_code=True)\n"
    tree = ast.parse(bad)
    found = [(o, n) for node, o, n in calls(tree) if (o, n) in (("torch", "load"), ("yaml", "load"))]
    assert len(found) == 3
    assert any(isinstance(kwarg(node, "trust_remote_code"), ast.Constant) for node, _, _ in calls(tree))
    ds = ast.parse("engine.load_checkpoint(p)\nwith safe_deepspeed_load():\n    engine.load_checkpoint(p)\n")
    assert guarded_lines(ds) == {2, 3}


STAGE_CONFIGS = {
    "sft": ("chatalign.sft.config", "SFTConfig", ["model"]),
    "reward": ("chatalign.reward.config", "RewardConfig", ["model"]),
    "rlhf_ppo": ("chatalign.rlhf.config", "RLHFRoundConfig", ["model"]),
    "gatt": ("chatalign.gatt.config", "GattConfig", ["model"]),
    "safety": ("chatalign.safety.config", "SafetyConfig", ["model", "safety_rm"]),
}


def config_class(stage):
    import importlib

    mod, name, _ = STAGE_CONFIGS[stage]
    return getattr(importlib.import_module(mod), name)


@pytest.mark.parametrize("stage", list(STAGE_CONFIGS))
def test_trust_remote_code_is_off_unless_a_recipe_sets_it(stage, recipe_files):
    cfg = load_config(config_class(stage), recipe_files[stage])
    for section in STAGE_CONFIGS[stage][2]:
        assert getattr(getattr(cfg, section), "trust_remote_code", False) is False, section


def test_trust_remote_code_on_warns(tiny_model_dir, caplog):
    from chatalign.models import load_causal_lm, load_tokenizer

    caplog.set_level(logging.WARNING)
    load_tokenizer(str(tiny_model_dir), trust_remote_code=True)
    load_causal_lm(str(tiny_model_dir), "float32", trust_remote_code=True)
    warned = [m for m in caplog.messages if "trust_remote_code is on" in m]
    assert len(warned) == 2 and str(tiny_model_dir) in warned[0]
    caplog.clear()
    load_tokenizer(str(tiny_model_dir))
    assert not [m for m in caplog.messages if "trust_remote_code" in m]


# stage -> path keys of its recipe (data files, and the run directories / models it reads and writes)
PATH_KEYS = {
    "sft": ["data.train", "data.eval", "model.name", "output_dir"],
    "reward": ["model.name", "output_dir"],
    "rlhf_ppo": ["data.prompts", "data.heldout", "start", "reward.helpful", "reward.safety", "output_dir"],
    "gatt": ["instructions.constraints", "eval.data", "model.name", "output_dir"],
    "safety": ["distill.templates", "eval.helpful", "eval.adversarial", "model.name", "safety_rm.name",
               "output_dir"],
}
EXPANSIONS = ["$HOME/x.jsonl", "${HOME}/x", "~/x.jsonl", "~root/x", "'{{ secret }}.jsonl'", "data/$(whoami).jsonl"]


@pytest.mark.parametrize("stage", list(PATH_KEYS))
def test_recipe_paths_never_expand(stage, recipe_files):
    cls, tried = config_class(stage), 0
    for key in PATH_KEYS[stage]:
        for value in EXPANSIONS:
            with pytest.raises(ConfigError, match=f"{key}: path .*not allowed"):
                load_config(cls, recipe_files[stage], [f"{key}={value}"])
            tried += 1
    lists = {"reward": "data.sources=[{{path: '{v}'}}]", "gatt": "synthesis.dialogues=['{v}']",
             "safety": "distill.prompts=['{v}']"}
    if stage in lists:
        with pytest.raises(ConfigError, match="not allowed"):
            load_config(cls, recipe_files[stage], [lists[stage].format(v="$HOME/p.jsonl")])
    assert tried == len(PATH_KEYS[stage]) * len(EXPANSIONS)


# stage -> (override that points the stage at a copy of its input file, the file)
INPUTS = {
    "sft": ("data.train={f}", QS / "sft_train.jsonl"),
    "reward": ("data.sources=[{{path: {f}, name: h}}]", QS / "pref_helpful_train.jsonl"),
    "rlhf_rs": ("data.prompts={f}", QS / "prompts_train.jsonl"),
    "rlhf_ppo": ("data.prompts={f}", QS / "prompts_train.jsonl"),
    "gatt": ("synthesis.dialogues=[{f}]", QS / "gatt_dialogues.jsonl"),
    "safety": ("distill.prompts=[{f}]", QS / "safety_adversarial_train.jsonl"),
}


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(INPUTS))
def test_resume_refuses_an_input_whose_content_changed(stage, recipe_files, tmp_path, capsys):
    override, src = INPUTS[stage]
    f = tmp_path / src.name
    shutil.copy(src, f)
    out = tmp_path / "run"
    args = [*STAGES[stage][0], "--config", str(recipe_files[stage]), "--no-progress", f"output_dir={out}",
            override.format(f=f)]
    assert main(args) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert any(v["path"] == str(f) and len(v["sha256"]) == 64 for v in manifest["inputs"].values()), manifest["inputs"]
    manifest["status"] = "running"  # as if the run had been killed before its end
    (out / "manifest.json").write_text(json.dumps(manifest))
    extra = json.loads(f.read_text().splitlines()[0])
    extra["id"] = f"{extra.get('id', 'row')}-appended"  # ids must stay unique (data_schemas rejects repeats)
    f.write_text(f.read_text() + json.dumps(extra) + "\n")  # one more row (past every max_rows): other bytes
    capsys.readouterr()
    assert main([*args, "--resume"]) == 2
    err = capsys.readouterr().err
    assert "changed since this run started" in err and "allow_changed_inputs=true" in err and "Traceback" not in err
    assert json.loads((out / "manifest.json").read_text())["status"] == "running"
    assert main([*args, "allow_changed_inputs=true", "--resume"]) == 0
    resumed = json.loads((out / "manifest.json").read_text())
    assert resumed["status"] == "finished" and resumed["resumed_at"]
