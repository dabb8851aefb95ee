"""Every file and folder a stage writes gets the mode the user's umask gives (a team on a shared file system can
read a run), not the private 0600/0700 of the temp files and folders that atomic writes rename into place."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from .conftest import ENV, command


def unreadable_to_others(root) -> list[str]:
    bad = []
    for p in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(p.lstat().st_mode)
        if p.is_symlink():
            continue
        want = 0o755 if p.is_dir() else 0o644
        if mode & want != want:
            bad.append(f"{oct(mode)} {p.relative_to(root)}")
    return bad


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_a_run_is_readable_by_the_team_under_umask_022(stage, recipe_files, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(command(stage, recipe_files[stage], out, False), capture_output=True, text=True,
                          env=ENV, timeout=300, preexec_fn=lambda: os.umask(0o022))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "model" / "model.safetensors").is_file() and (out / "report.md").is_file()
    assert not unreadable_to_others(out), unreadable_to_others(out)[:20]
