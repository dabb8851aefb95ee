"""The chain of runs behind a round: round N <- round N-1 <- ... <- SFT run <- base model.

A round's manifest carries an `rlhf` block (round number, mode, absolute path of the run it started from,
reward models); following `start` links walks the chain back to the first run that is not a round (the SFT
run, or a plain model directory). Rejection sampling reads the earlier rounds' selected answers through it,
the win rate finds the SFT baseline through it, and `chatalign rlhf status` prints it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from chatalign.errors import ConfigError

STAGE = "rlhf"


@dataclass
class ChainLink:
    path: str  # run directory (absolute) or model name as given
    stage: str | None  # manifest stage; None for a plain model directory / `embedded` / hub id
    round: int | None = None  # for rounds
    mode: str | None = None
    start: str | None = None  # for rounds: the run they started from
    status: str | None = None

    @property
    def is_round(self) -> bool:
        return self.stage == STAGE


def read_manifest(path: str | Path) -> dict | None:
    p = Path(path) / "manifest.json"
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def link_of(path: str) -> ChainLink:
    manifest = read_manifest(path) if Path(path).is_dir() else None
    if manifest is None:
        return ChainLink(path=path, stage=None)
    info = manifest.get("rlhf") or {}
    return ChainLink(path=str(Path(path).resolve()), stage=manifest.get("stage"), round=info.get("round"),
                     mode=info.get("mode"), start=info.get("start"), status=manifest.get("status"))


def chain(start: str, limit: int = 1000) -> list[ChainLink]:
    """Links from `start` back to the first non-round run (inclusive), newest first."""
    out: list[ChainLink] = []
    seen: set[str] = set()
    current: str | None = start
    while current is not None and len(out) < limit:
        link = link_of(current)
        if link.path in seen:
            raise ConfigError(f"the lineage of {start} loops back to {link.path}")
        seen.add(link.path)
        out.append(link)
        current = link.start if link.is_round else None
    return out


def next_round_number(start: str) -> int:
    first = link_of(start)
    return (first.round or 0) + 1 if first.is_round else 1


def sft_baseline(start: str) -> ChainLink:
    """The first run of the chain that is not a round (the SFT run, or the model the rounds began from)."""
    return chain(start)[-1]


def earlier_selected_files(start: str) -> list[tuple[int, Path]]:
    """(round, data/selected.jsonl) of every earlier round in the chain that did rejection sampling."""
    out = []
    for link in chain(start):
        if link.is_round:
            f = Path(link.path) / "data" / "selected.jsonl"
            if f.is_file():
                out.append((link.round or 0, f))
    return sorted(out)


def resolve_run_path(value: str) -> str:
    """A run directory or model dir relative to the cwd, made absolute; `embedded`/hub ids pass through."""
    p = Path(value)
    return str(p.resolve()) if p.exists() else value
