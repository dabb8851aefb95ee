"""User-only multi-turn dialogues for GAtt: the bundled {"id", "user_turns"} rows, or any Conversation file.

A Conversation (any format `chatalign.data_schemas` reads) contributes its user messages in order; its
assistant answers are not used, since GAtt samples new ones with the current model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from chatalign.errors import DataError


@dataclass(frozen=True)
class Dialogue:
    id: str
    user_turns: tuple[str, ...]


def _user_turn_rows(path: Path) -> list[Dialogue] | None:
    """Rows of a JSONL file whose first row has "user_turns"; None when the file is something else."""
    if path.suffix.lower() != ".jsonl" or not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    first = next((ln for ln in lines if ln.strip()), None)
    if first is None:
        raise DataError(f"{path}: empty file")
    try:
        if "user_turns" not in json.loads(first):
            return None
    except (ValueError, TypeError):
        return None
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{path}:{n}: invalid JSON: {exc}") from None
        turns = row.get("user_turns") if isinstance(row, dict) else None
        if not isinstance(turns, list) or not turns:
            raise DataError(f"{path}:{n}: user_turns: expected a non-empty list of strings")
        for k, t in enumerate(turns):
            if not isinstance(t, str) or not t.strip():
                raise DataError(f"{path}:{n}: user_turns.{k}: must be non-empty text")
        out.append(Dialogue(str(row.get("id") or f"{path.stem}-{n}"), tuple(turns)))
    return out


def load_dialogues(path: str | os.PathLike, max_dialogues: int | None = None) -> list[Dialogue]:
    """Dialogues of one file, in file order (first `max_dialogues` when given)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file")
    dialogues = _user_turn_rows(p)
    if dialogues is None:
        from chatalign.data_schemas import load_records

        convs = load_records(p, "conversation").records
        dialogues = [Dialogue(c.id or f"{p.stem}-{i + 1}", tuple(m.content for m in c.messages if m.role == "user"))
                     for i, c in enumerate(convs)]
    if not dialogues:
        raise DataError(f"{p}: no dialogues")
    return dialogues[:max_dialogues] if max_dialogues else dialogues
