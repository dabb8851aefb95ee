"""Hub datasets as data keys: `hf://datasets/OWNER/NAME[@REVISION][?split=S&config=C&columns=SRC:DST,...]`.

Read through `datasets.load_dataset`, so the Hub when it is reachable, the local `datasets` cache when it is not
(HF_DATASETS_OFFLINE=1), with the user's own token and mirror settings. `split` defaults to train; `columns`
renames the dataset's columns before the row adapters see them (`columns=instruction:prompt`); a column that is
not there is an error naming it. Rows come out like any file's rows (`RawRow`, numbered from 1), so a bad row is
reported as `hf://datasets/OWNER/NAME?split=train, row 12, field ...`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from chatalign.data_schemas.issues import BadDataError, Issue

PREFIX = "hf://datasets/"  # recipe paths starting so are not resolved (chatalign.config)
FORM = "hf://datasets/OWNER/NAME[@REVISION][?split=train&config=NAME&columns=SRC:DST,...]"
NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
KEYS = ("split", "config", "columns")


@dataclass(frozen=True)
class HubSource:
    repo: str
    revision: str | None = None
    split: str = "train"
    config: str | None = None
    columns: tuple[tuple[str, str], ...] = ()


def is_hub_spec(text: object) -> bool:
    return isinstance(text, str) and text.startswith(PREFIX)


def _fatal(spec: str, problem: str, line: int | None = None) -> BadDataError:
    return BadDataError([Issue(spec, line, None, problem, "row")])


def parse_hub_spec(spec: str) -> HubSource:
    """The parts of a hub spec; a malformed one raises BadDataError saying the expected form."""
    parts = urlsplit(spec)
    repo, _, revision = spec[len(PREFIX):].split("?", 1)[0].partition("@")
    if not NAME.match(repo):
        raise _fatal(spec, f"not a Hub dataset: expected {FORM}")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - set(KEYS))
    if unknown:
        raise _fatal(spec, f"unknown option(s) {', '.join(unknown)}: a Hub dataset takes {', '.join(KEYS)}")
    columns = []
    for pair in (query.get("columns") or [""])[0].split(","):
        if not pair:
            continue
        src, sep, dst = pair.partition(":")
        if not sep or not src or not dst:
            raise _fatal(spec, f"columns={pair!r}: expected SRC:DST pairs separated by commas")
        columns.append((src, dst))
    return HubSource(repo=repo, revision=revision or None, split=(query.get("split") or ["train"])[0] or "train",
                     config=(query.get("config") or [None])[0] or None, columns=tuple(columns))


def load_hub_dataset(spec: str):
    """The split as a `datasets.Dataset`, its columns renamed."""
    import datasets

    src = parse_hub_spec(spec)
    try:
        ds = datasets.load_dataset(src.repo, src.config, split=src.split, revision=src.revision)
    except Exception as exc:  # offline without a cache, a wrong split or config: one line for the user
        raise _fatal(spec, f"could not load it with datasets.load_dataset: {type(exc).__name__}: {exc}") from None
    missing = [s for s, _ in src.columns if s not in ds.column_names]
    if missing:
        raise _fatal(spec, f"columns: no column {', '.join(missing)} (the dataset has {', '.join(ds.column_names)})")
    if src.columns:
        ds = ds.rename_columns(dict(src.columns))
    return ds


def iter_hub_rows(spec: str) -> Iterator[tuple[int, dict]]:
    """(row number from 1, row) of every row of the split."""
    ds = load_hub_dataset(spec)
    if len(ds) == 0:
        raise _fatal(spec, "empty split: no rows")
    yield from enumerate(ds, 1)


def hub_fingerprint(spec: str) -> str:
    """What identifies the split's content for manifests and pipeline keys: datasets' own fingerprint."""
    return "datasets:" + load_hub_dataset(spec)._fingerprint
