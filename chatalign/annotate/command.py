"""`chatalign annotate FILE`: label comparisons in a browser, the Llama 2 protocol."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """Serve a page on this machine (127.0.0.1 only, no external assets: works offline) that shows
each comparison of FILE (a prompt and two answers, in random order) and takes a label: the better answer, how much
better, and safety. Every label is written at once and atomically to the labels file, a canonical preference JSONL
that `chatalign reward` reads; stop at any time and start again to resume. Several people can label the same file:
each label records its annotator. Keys: a/b (or arrows) pick the answer, 1-5 the strength, q/w/e safety, n the
note, Enter saves."""


def add_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("annotate", help="label comparisons (better answer, strength, safety) in a local web page",
                       description=DESCRIPTION)
    p.add_argument("file", metavar="FILE", help="comparisons to label (JSONL of comparison records)")
    p.add_argument("--labels", default=None,
                   help="preference JSONL the labels go to (default: FILE's name with .labels.jsonl)")
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765; 0: any free one)")
    p.set_defaults(handler=cmd_annotate)


def labels_path(file: Path, labels: str | None) -> Path:
    if labels is not None:
        return Path(labels)
    name = file.name.removesuffix(".jsonl").removesuffix(".json")
    return file.with_name(f"{name}.labels.jsonl")


def cmd_annotate(args) -> int:
    from chatalign.annotate.server import serve
    from chatalign.data_schemas import load_records
    from chatalign.errors import UserError

    file = Path(args.file)
    if not file.is_file():
        raise UserError(f"{file}: no such file")
    comparisons = list(load_records(file, "comparison").records)  # a repeated id is refused there, by line
    labels = labels_path(file, args.labels)
    try:
        server = serve(comparisons, labels, args.port)
    except OSError as exc:
        raise UserError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror} (choose another --port)") from None
    print(f"annotate: {len(comparisons)} comparisons from {file}; labels go to {labels}", flush=True)
    print(f"open {server.url} in a browser (Ctrl+C stops; every saved label is on disk)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nannotate: stopped", flush=True)
    finally:
        server.server_close()
    return 0
