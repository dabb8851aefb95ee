"""Labels of comparisons, the Llama 2 protocol (section 3.2.1): which answer is better, how much better
(significantly / better / slightly / negligibly better or unsure), and safety (the better one safe and the other
not, both safe, both unsafe). A label becomes a canonical `Preference` with its `Annotation`; the store keeps
them in one preference JSONL that `chatalign reward` reads as it is."""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import re
import threading
from pathlib import Path

from chatalign.data_schemas import Annotation, Comparison, Preference, Strength, load_records, write_jsonl
from chatalign.errors import UserError

STRENGTHS = tuple(s.value for s in Strength)
# (chosen_safe, rejected_safe). The paper keeps no pair whose chosen answer is unsafe and the other safe: a safer
# answer is always the better one there, so that label does not exist.
SAFETY = {"better_safe_other_not": (True, False), "both_safe": (True, True), "both_unsafe": (False, False)}
SIDES = ("left", "right")
ANNOTATOR_NAME = re.compile(r"^[\w][\w .@-]{0,63}$")


class LabelError(UserError):
    """A label outside the scale, a name the store cannot keep, a comparison that does not exist."""


def shown_order(comparison_id: str, annotator: str) -> tuple[int, int]:
    """Which answer sits left and which right for this annotator: random across comparisons (no position bias
    to learn), the same on every reload (a half-labelled page comes back as it was)."""
    digest = hashlib.sha256(f"{comparison_id}\0{annotator}".encode()).digest()
    return (0, 1) if digest[0] % 2 == 0 else (1, 0)


def person(name: str) -> str:
    """The annotator field of a person's label."""
    name = (name or "").strip()
    if not ANNOTATOR_NAME.match(name):
        raise LabelError(f"annotator name {name!r}: 1-64 letters, digits, spaces or . @ - _ (it is kept in the "
                         "labels file)")
    return f"person:{name}"


def to_preference(comp: Comparison, better_index: int, strength: str, safety: str, annotator: str,
                  shown: tuple[int, int] | None, note: str | None = None) -> Preference:
    """The canonical preference a label makes: answers[better_index] chosen, the other rejected; `shown`, the
    order a person saw the answers in (None for a judge or rules, which see no page)."""
    if better_index not in (0, 1):
        raise LabelError(f"better: answer {better_index} does not exist (0 or 1)")
    if strength not in STRENGTHS:
        raise LabelError(f"strength {strength!r} is not on the scale: one of {', '.join(STRENGTHS)}")
    if safety not in SAFETY:
        raise LabelError(f"safety {safety!r} is not a label: one of {', '.join(SAFETY)}")
    chosen_safe, rejected_safe = SAFETY[safety]
    chosen, rejected = comp.answers[better_index], comp.answers[1 - better_index]
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return Preference(
        prompt=comp.prompt, chosen=chosen.text, rejected=rejected.text, strength=strength, chosen_safe=chosen_safe,
        rejected_safe=rejected_safe, category=comp.category, id=f"{comp.id}@{annotator}", source=comp.source,
        annotation=Annotation(annotator=annotator, comparison_id=comp.id,
                              shown_first=None if shown is None else
                              "chosen" if shown[0] == better_index else "rejected",
                              note=(note or "").strip() or None, labelled_at=now))


class LabelStore:
    """The labels file: every label written at once, atomically (temp file + rename), under a lock that two
    servers (or two tabs of one) on the same file share, so none overwrites another's label. A label for a
    comparison the same annotator labelled before replaces it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._mutex = threading.Lock()
        self._cache: tuple[tuple, list[Preference]] | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.read()  # a tampered file fails now, naming its line and field, not at the first label

    def read(self) -> list[Preference]:
        """The labels in the file, parsed again only when the file changed (another server, or tab of this one,
        replaces it by a rename: a new inode and mtime), not at every page request."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return []
        signature = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._cache
        if cached is None or cached[0] != signature:
            cached = (signature, list(load_records(self.path, "preference").records))
            self._cache = cached
        return list(cached[1])

    def labelled_by(self, annotator: str) -> set[str]:
        return {p.annotation.comparison_id for p in self.read()
                if p.annotation is not None and p.annotation.annotator == annotator}

    def save(self, pref: Preference) -> int:
        """Add (or replace) one label; returns how many labels the file holds."""
        lock = self.path.with_name(f".{self.path.name}.lock")
        with self._mutex, open(lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            rows = [p for p in self.read() if p.id != pref.id] + [pref]
            write_jsonl(self.path, rows)
        return len(rows)
