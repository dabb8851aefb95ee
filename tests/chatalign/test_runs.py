import json

import pytest

from chatalign.errors import RunError
from chatalign.runs import RunDir, file_sha256, link_files, replace_dir, write_json_atomic


def test_second_process_on_a_busy_run_directory_is_refused(tmp_path):
    a = RunDir(tmp_path / "run", "sft")
    a.lock()
    b = RunDir(tmp_path / "run", "sft")
    with pytest.raises(RunError, match="in use by another process"):
        b.lock()
    a.unlock()
    b.lock()  # free again once the first one let go
    b.unlock()


def test_manifest_records_hashes_and_refuses_changed_inputs_on_resume(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"a": 1}\n')
    run = RunDir(tmp_path / "run", "sft")
    m = run.start({"x": 1}, {"train": data})
    assert m["inputs"]["train"]["sha256"] == file_sha256(data)
    assert m["status"] == "running" and m["config_hash"]
    data.write_text('{"a": 2}\n')
    with pytest.raises(RunError, match="changed since this run started"):
        run.start({"x": 1}, {"train": data}, resume=True)
    resumed = run.start({"x": 1}, {"train": data}, resume=True, allow_changed_inputs=True)
    assert len(resumed["resumed_at"]) == 1
    done = run.finish({"loss": 0.5})
    assert done["status"] == "finished" and run.is_finished()


def test_metrics_truncate_on_resume_and_tolerate_a_cut_line(tmp_path):
    run = RunDir(tmp_path / "run", "sft")
    for step in range(1, 6):
        run.log_metrics({"step": step, "loss": 1.0 / step})
    run.truncate_metrics(3)
    assert [r["step"] for r in run.read_metrics()] == [1, 2, 3]
    with open(run.metrics_path, "a") as f:
        f.write('{"step": 4, "lo')
    run.truncate_metrics(2)  # a resume after a kill mid-write
    assert [r["step"] for r in run.read_metrics()] == [1, 2]
    with open(run.metrics_path, "a") as f:
        f.write('{"step": 4, "lo')  # a kill in the middle of a write
    assert [r["step"] for r in run.read_metrics()] == [1, 2]


def test_atomic_json_write_leaves_no_temp_files(tmp_path):
    write_json_atomic(tmp_path / "m.json", {"a": 1})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_replace_dir_puts_the_new_copy_in_place_and_leaves_no_old_one(tmp_path):
    target = tmp_path / "model"
    for text in ("first", "second"):
        tmp = tmp_path / f".tmp-{text}"
        tmp.mkdir()
        (tmp / "weights.txt").write_text(text)
        replace_dir(tmp, target)
        assert (target / "weights.txt").read_text() == text and not tmp.exists()
    (tmp_path / ".model.old").mkdir()  # left by a crash between the two renames: replaced, then removed
    tmp = tmp_path / ".tmp-third"
    tmp.mkdir()
    (tmp / "weights.txt").write_text("third")
    replace_dir(tmp, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert (target / "weights.txt").read_text() == "third"


def test_starting_over_a_finished_run_or_left_checkpoints_needs_resume(tmp_path):
    run = RunDir(tmp_path / "run", "sft")
    run.refuse_start_over("SFT", resume=False)  # nothing there yet
    (run.checkpoints / "step_2").mkdir(parents=True)
    with pytest.raises(RunError, match="holds checkpoints of an unfinished run: add --resume"):
        run.refuse_start_over("SFT", resume=False)
    run.refuse_start_over("SFT", resume=True)
    run.start({"x": 1}, {})
    run.finish({})
    with pytest.raises(RunError, match="already holds a finished SFT run"):
        run.refuse_start_over("SFT", resume=False)
    run.refuse_start_over("SFT", resume=True)


def test_link_files_links_the_plain_files_and_copies_across_filesystems(tmp_path, monkeypatch):
    import os

    src, linked, copied = tmp_path / "model", tmp_path / "linked", tmp_path / "copied"
    for d in (src, linked, copied):
        d.mkdir()
    (src / "config.json").write_text("{}")
    (src / "nested").mkdir()  # not a model file: left out
    link_files(src, linked)
    assert sorted(p.name for p in linked.iterdir()) == ["config.json"]
    assert (linked / "config.json").stat().st_ino == (src / "config.json").stat().st_ino

    def cross_device(a, b):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    link_files(src, copied)
    assert (copied / "config.json").read_text() == "{}"
    assert (copied / "config.json").stat().st_ino != (src / "config.json").stat().st_ino
