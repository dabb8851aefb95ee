"""Task specs: names pass through, a task YAML becomes lm-eval's config dict with its data read from its folder."""

from __future__ import annotations

import pytest

from chatalign.errors import ConfigError
from chatalign.harness.tasks import resolve_task, split_tasks, task_label

pytest.importorskip("lm_eval", reason="the harness extra (pip install 'chatalign[harness]') is in the dev install")


def test_split_tasks_keeps_order_and_drops_repeats():
    assert split_tasks(" arc_easy, hellaswag,arc_easy ,") == ["arc_easy", "hellaswag"]
    with pytest.raises(ConfigError, match="--tasks"):
        split_tasks(" , ")


def test_yaml_task_data_files_are_read_from_the_yaml_folder(tmp_path, monkeypatch):
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "t.yaml").write_text("task: my_mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
                                   "    test: docs.jsonl\n    extra: [a.jsonl, /abs/b.jsonl]\n"
                                   "output_type: multiple_choice\n")
    monkeypatch.chdir(tmp_path)  # relative to the cwd, `docs.jsonl` would not exist
    config = resolve_task("tasks/t.yaml")
    files = config["dataset_kwargs"]["data_files"]
    assert files["test"] == str(folder / "docs.jsonl")
    assert files["extra"] == [str(folder / "a.jsonl"), "/abs/b.jsonl"]
    assert task_label(config) == "my_mc" and task_label("arc_easy") == "arc_easy"
    assert resolve_task("arc_easy") == "arc_easy"


def test_bad_task_yaml_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match="no such task YAML"):
        resolve_task(str(tmp_path / "missing.yaml"))
    (tmp_path / "nameless.yaml").write_text("dataset_path: json\n")
    with pytest.raises(ConfigError, match="nameless.yaml: an lm-eval task YAML needs a `task:` name"):
        resolve_task(str(tmp_path / "nameless.yaml"))
    (tmp_path / "broken.yaml").write_text("task: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml: not a readable lm-eval task YAML"):
        resolve_task(str(tmp_path / "broken.yaml"))
