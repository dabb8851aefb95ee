"""Run directories: manifest (lineage, hashes, versions), metrics log, lock against concurrent use."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from chatalign.data_schemas.file_output import fault_disk_full, give_umask_modes, temp_file_beside
from chatalign.errors import RunError

MANIFEST = "manifest.json"
ADAPTER = "adapter"  # a LoRA run's adapter in PEFT format
# what a tokenizer is saved as (transformers' save_pretrained): kept beside an adapter that replaces model/
TOKENIZER_FILES = ("tokenizer", "special_tokens_map", "chat_template", "vocab", "merges", "added_tokens")


def holds_adapter_only(path: str | os.PathLike) -> bool:
    """A finished LoRA run that kept `adapter/` instead of `model/` (lora.save: adapter; RunDir.keep_adapter_only)."""
    p = Path(path)
    return (p / MANIFEST).is_file() and (p / ADAPTER / "adapter_config.json").is_file() and not (p / "model").exists()


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` to a temp file beside `path`, then rename it into place: a crash or a full disk leaves the
    old file (or none), never half of the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file_beside(path, f".{path.name}-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        fault_disk_full(path)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def replace_dir(tmp: Path, target: Path) -> None:
    """Put the finished directory `tmp` at `target`, replacing what is there: the old copy is moved aside
    first and deleted only once `tmp` is in place, so a crash in between leaves a whole copy on disk."""
    fault_disk_full(target)
    give_umask_modes(tmp)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def link_files(src: Path, dst: Path) -> None:
    """The plain files of folder `src` into folder `dst`: hard links where the filesystem allows (a model's
    weights are not copied twice on one disk), copies elsewhere."""
    for f in sorted(src.iterdir()):
        if f.is_file():
            try:
                os.link(f, dst / f.name)
            except OSError:
                shutil.copy2(f, dst / f.name)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def file_sha256(path: str | os.PathLike) -> str:
    """Content hash of a file, or of every file below a directory (names included)."""
    p = Path(path)
    h = hashlib.sha256()
    files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    for q in files:
        if p.is_dir():
            h.update(str(q.relative_to(p)).encode())
        with open(q, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def input_sha256(value: str | os.PathLike) -> str:
    """The content hash of a data input: a file or folder, or a Hub dataset split (datasets' fingerprint)."""
    from chatalign.data_schemas.hub import hub_fingerprint, is_hub_spec

    return hub_fingerprint(value) if is_hub_spec(value) else file_sha256(value)


def is_hub_spec(value: object) -> bool:
    from chatalign.data_schemas.hub import is_hub_spec as hub

    return hub(value)


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("chatalign", "torch", "transformers", "trl", "peft", "deepspeed", "accelerate", "datasets"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        return r.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


class RunDir:
    """One stage's output directory. Holds an exclusive lock for as long as the run is open."""

    def __init__(self, path: str | os.PathLike, stage: str):
        self.path = Path(path)
        self.stage = stage
        self._lock_fd: int | None = None
        self.trackers = None  # the recipe's experiment trackers, opened by start()

    # -- layout
    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def read_manifest(self) -> dict | None:
        if not self.manifest_path.is_file():
            return None
        return json.loads(self.manifest_path.read_text(encoding="utf-8"))

    def is_finished(self) -> bool:
        m = self.read_manifest()
        return bool(m and m.get("status") == "finished")

    def refuse_start_over(self, what: str, resume: bool) -> None:
        """Without --resume, refuse a directory holding a finished `what` run or an unfinished run's checkpoints."""
        if resume:
            return
        if self.is_finished():
            raise RunError(f"{self.path} already holds a finished {what} run; choose another output_dir")
        if self.checkpoints.is_dir() and any(self.checkpoints.iterdir()):
            raise RunError(f"{self.path} holds checkpoints of an unfinished run: add --resume to continue it, "
                           "or choose another output_dir")

    # -- locking
    def lock(self) -> None:
        import fcntl

        self._made_dir = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunError(f"run directory {self.path} is in use by another process (lock held); "
                           "wait for it or choose another output directory") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            # a run that failed before writing anything (bad data, bad inputs) leaves no directory behind
            if getattr(self, "_made_dir", False) and [p.name for p in self.path.iterdir()] == [".lock"]:
                (self.path / ".lock").unlink()
                self.path.rmdir()
            os.close(self._lock_fd)
            self._lock_fd = None
        self._close_trackers({}, failed=True)  # still open: the run stopped before finish()

    # -- manifest
    def start(self, config: dict, inputs: dict[str, str | os.PathLike], parents: list[str] | None = None,
              resume: bool = False, allow_changed_inputs: bool = False) -> dict:
        """Write the manifest of a new run, or check a resumed run's inputs have not changed."""
        hashes = {k: {"path": str(v), "sha256": input_sha256(v)} for k, v in inputs.items()
                  if v is not None and (is_hub_spec(v) or Path(v).exists())}
        old = self.read_manifest()
        if resume and old:
            for key, rec in old.get("inputs", {}).items():
                new = hashes.get(key)
                if new and new["sha256"] != rec["sha256"] and not allow_changed_inputs:
                    raise RunError(f"input {key} ({rec['path']}) changed since this run started "
                                   "(content hash differs); pass allow_changed_inputs=true to resume anyway")
            manifest = old
            manifest["resumed_at"] = manifest.get("resumed_at", []) + [now()]
            manifest["status"] = "running"
        else:
            manifest = {
                "stage": self.stage, "status": "running", "config": config,
                "config_hash": config_hash(config), "inputs": hashes, "parents": parents or [],
                "versions": package_versions(), "git_commit": git_commit(), "started_at": now(),
            }
        write_json_atomic(self.manifest_path, manifest)
        from chatalign.tracking import open_trackers

        self._close_trackers({}, failed=True)
        self.trackers = open_trackers({**manifest, "config": config}, self.path)
        return manifest

    def _close_trackers(self, metrics: dict, failed: bool) -> None:
        if self.trackers is not None:
            self.trackers.finish(metrics, failed)
            self.trackers = None

    def finish(self, metrics: dict, extra: dict | None = None, adapter_only: bool = False) -> dict:
        """Mark the run finished; `adapter_only` (lora.save: adapter): `adapter/` replaces `model/` first."""
        if adapter_only:
            self.keep_adapter_only()
        manifest = self.read_manifest() or {"stage": self.stage}
        manifest.update({"status": "finished", "finished_at": now(), "metrics": metrics})
        if adapter_only:
            manifest["outputs"] = {"model": None, "adapter": ADAPTER}
        if extra:
            manifest.update(extra)
        write_json_atomic(self.manifest_path, manifest)
        self._close_trackers(metrics, failed=False)
        return manifest

    def keep_adapter_only(self) -> None:
        """`adapter/` gets the tokenizer files of `model/` (a PEFT folder that loads by itself), then `model/` goes."""
        adapter, model = self.path / ADAPTER, self.model_dir
        if not (adapter / "adapter_config.json").is_file():
            raise RunError(f"{adapter}: no adapter_config.json to keep instead of {model}")
        if model.is_dir():
            for f in model.iterdir():
                if f.is_file() and f.name.startswith(TOKENIZER_FILES) and not (adapter / f.name).exists():
                    tmp = adapter / f".{f.name}.tmp"
                    shutil.copyfile(f, tmp)
                    os.replace(tmp, adapter / f.name)
        if model.is_symlink():
            model.unlink()
        elif model.exists():
            shutil.rmtree(model)

    # -- metrics
    def log_metrics(self, record: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        fault_disk_full(self.metrics_path)
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=float) + "\n")
        if self.trackers is not None:
            self.trackers.log(record)

    def truncate_metrics(self, after_step: int) -> None:
        """On resume, forget logged steps past the checkpoint so the log has no duplicates."""
        keep = [r for r in self.read_metrics() if r.get("step", 0) <= after_step]
        write_text_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in keep))

    def read_metrics(self) -> list[dict]:
        if not self.metrics_path.is_file():
            return []
        out = []
        for ln in self.metrics_path.read_text(encoding="utf-8").splitlines():
            if ln.strip():
                try:
                    out.append(json.loads(ln))
                except json.JSONDecodeError:
                    continue  # a line cut by a kill mid-write
        return out
