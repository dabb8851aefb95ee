"""Model names: a path that does not exist here fails at once, offline, in one line naming the config key and
the path; only a name shaped like a Hub id (owner/name, whose owner is not a folder here) goes to the Hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatalign.cli.main import main
from chatalign.errors import UserError
from chatalign.models import is_hub_id, resolve_model_path

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes" / "quickstart"


@pytest.fixture()
def in_project(tmp_path, monkeypatch):
    """The current directory is a project with a `runs/` folder, as after a first run."""
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name, hub", [
    ("HuggingFaceTB/SmolLM2-135M", True), ("gpt2", True), ("meta-llama/Llama-2-7b-hf", True),
    ("runs/nope", False),  # runs/ is a folder here: a mistyped run directory
    ("./runs/nope", False), ("../x/y", False), ("/abs/nope", False), ("a/b/c", False), ("org/", False),
    (".hidden/name", False), ("org/-name", False),
])
def test_which_names_are_hub_ids(in_project, name, hub):
    assert is_hub_id(name) is hub


def test_a_missing_path_fails_at_once_naming_the_key(in_project):
    with pytest.raises(UserError) as exc:
        resolve_model_path("runs/nope", key="model.name")
    assert str(exc.value) == ("model.name: runs/nope: no such directory (and not read as a Hub id: a Hub id is "
                              "owner/name (letters, digits, _ . -) whose owner is not a folder here)")
    assert resolve_model_path("org/name") == "org/name"


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    return err[0]


def test_a_stage_with_a_mistyped_run_directory_exits_2_in_one_line(in_project, capsys):
    rc = main(["sft", "--config", str(RECIPES / "sft.yaml"), "model.name=runs/nope", "output_dir=runs/sft",
               "--no-progress"])
    assert rc == 2
    assert one_error_line(capsys).startswith("chatalign: error: model.name: runs/nope: no such directory")
    assert list((in_project / "runs").iterdir()) == []


def test_chat_with_a_mistyped_run_directory_exits_2_in_one_line(in_project, capsys):
    assert main(["chat", "runs/nope", "--prompt", "hi"]) == 2
    assert one_error_line(capsys).startswith("chatalign: error: model runs/nope: no such directory")
