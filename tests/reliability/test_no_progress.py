"""`--no-progress` means no progress bar at all: none of ours, and none of the libraries' (transformers'
"Loading weights" / "Writing model shards", the Hub's, datasets')."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import ENV, command


@pytest.mark.slow
def test_no_progress_leaves_no_bar_in_the_output(recipe_files, tmp_path):
    proc = subprocess.run(command("sft", recipe_files["sft"], tmp_path / "run", False), capture_output=True,
                          text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    both = proc.stdout + proc.stderr
    assert "it/s]" not in both and "Loading weights" not in both and "Writing model shards" not in both, both[-2000:]
