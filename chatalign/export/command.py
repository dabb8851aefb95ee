"""`chatalign export RUN --out DIR [--push-to-hub ID]`: the run's model/ copied with a generated model card,
written whole or not at all; the upload goes through huggingface_hub (token and endpoint from its own
environment: HF_TOKEN, HF_ENDPOINT)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from chatalign.errors import UserError


def add_command(sub: argparse._SubParsersAction) -> None:
    text = "a Hub-ready folder of a run's model with a model card (lineage, data, recipe, metrics, evaluations)"
    p = sub.add_parser("export", help=text, description=text)
    p.add_argument("run", metavar="RUN", help="a finished run directory (it has manifest.json and model/, or adapter/ "
                   "alone after lora.save: adapter)")
    p.add_argument("--out", required=True, help="folder to write (replaced if it exists)")
    p.add_argument("--push-to-hub", metavar="ID", default=None, help="also upload the folder to this Hub repo")
    p.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    p.set_defaults(handler=cmd_export)


def finished_run(path: str) -> Path:
    from chatalign.runs import RunDir, holds_adapter_only

    run = Path(path)
    if not (run / "manifest.json").is_file():
        raise UserError(f"{run}: not a run directory (no manifest.json)")
    if not RunDir(run, "?").is_finished():
        raise UserError(f"{run}: the run has not finished (manifest status is not 'finished')")
    if not (run / "model" / "config.json").is_file() and not holds_adapter_only(run):
        raise UserError(f"{run}: the run has no model/ to export")
    return run


def export_run(run: Path, out: Path, repo_id: str) -> Path:
    """Write `out`: the files of run/model (or run/adapter for an adapter-only run; hard links where possible) and
    README.md; atomically."""
    from chatalign.data_schemas.file_output import temp_dir_in
    from chatalign.export.card import model_card
    from chatalign.runs import holds_adapter_only, link_files, replace_dir, write_text_atomic

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(temp_dir_in(out.parent, f".{out.name}-"))
    try:
        link_files(run / ("adapter" if holds_adapter_only(run) else "model"), tmp)
        write_text_atomic(tmp / "README.md", model_card(run, repo_id))
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def push(folder: Path, repo_id: str, private: bool) -> str:
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id,
                                 commit_message="chatalign export")
    except Exception as exc:  # no network, no token, no permission: the library's message, one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"push to {repo_id} failed: {first} (the folder {folder} is complete: push it again "
                        "later with --push-to-hub or `huggingface-cli upload`)") from None
    return str(getattr(info, "commit_url", info))


def cmd_export(args) -> int:
    run = finished_run(args.run)
    out = Path(args.out)
    repo_id = args.push_to_hub or f"{run.name}"
    export_run(run, out, repo_id)
    from chatalign.runs import holds_adapter_only

    print(f"wrote {out} ({'LoRA adapter' if holds_adapter_only(run) else 'model'} and README.md model card)")
    if args.push_to_hub:
        print(f"pushed: {push(out, args.push_to_hub, args.private)}")
    return 0
