"""Results of a suite on a model, kept so that each model is evaluated once: the untouched base model once per
pipeline, and a stage's model once though the next stage compares against it as its `before`.

A result is found by its key: the model's fingerprint (the content of its weight, config and tokenizer files),
the suite's settings and the content of the data files it reads. Change any of them and the suite runs again.
Writes are atomic, so a killed evaluation leaves no half-written result behind.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from chatalign.runs import write_json_atomic

CACHE_VERSION = 1  # bump when a suite's computation changes (old results then no longer match)
_FINGERPRINTS: dict[tuple, str] = {}


def _model_files(model_dir: Path) -> list[Path]:
    return sorted(p for p in model_dir.iterdir() if p.is_file() and not p.name.startswith("."))


def model_fingerprint(model: str | os.PathLike) -> str:
    """Content hash of a model directory (`embedded`, a run directory and an HF directory are resolved first);
    a hub id that is not a local directory is its name. Remembered per (file, size, mtime) in this process."""
    from chatalign.models import resolve_model_path

    path = Path(resolve_model_path(str(model)))
    if not path.is_dir():
        return f"name:{model}"
    files = _model_files(path)
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    if stamp not in _FINGERPRINTS:
        h = hashlib.sha256()
        for p in files:
            h.update(p.name.encode())
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        _FINGERPRINTS[stamp] = h.hexdigest()
    return _FINGERPRINTS[stamp]


def data_hash(paths: list[Path]) -> str:
    from chatalign.runs import file_sha256

    return hashlib.sha256("".join(f"{p.name}:{file_sha256(p)};" for p in paths).encode()).hexdigest()


def result_key(suite: str, fingerprint: str, settings: dict, data: str) -> str:
    text = json.dumps({"v": CACHE_VERSION, "suite": suite, "model": fingerprint, "settings": settings, "data": data},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class ResultCache:
    """One folder of `<suite>-<key>.json` results."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def path(self, suite: str, key: str) -> Path:
        return self.folder / f"{suite}-{key}.json"

    def get(self, suite: str, key: str) -> dict | None:
        p = self.path(suite, key)
        try:
            return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None
        except (OSError, json.JSONDecodeError):
            return None  # unreadable: computed again and rewritten

    def put(self, suite: str, key: str, result: dict) -> None:
        write_json_atomic(self.path(suite, key), result)


def default_cache_dir(run_dir: str | os.PathLike | None) -> Path:
    """`.independent_cache` beside the run directory (a pipeline's steps share it), else ~/.cache/chatalign/eval."""
    if run_dir is not None:
        return Path(run_dir).resolve().parent / ".independent_cache"
    from chatalign.embedded import cache_root

    return cache_root() / "eval"
