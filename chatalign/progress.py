"""Progress bars for long scoring loops that have no run-level flag to ask: none for small loops (their bars
would only clutter a log), and none once `--no-progress` has called `disable_bars()`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_bars_enabled = True  # process-wide, like the libraries' own switches (transformers, datasets)


def disable_bars() -> None:
    global _bars_enabled
    _bars_enabled = False


def enable_bars() -> None:
    global _bars_enabled
    _bars_enabled = True


@contextmanager
def counting_bar(total: int, desc: str, unit: str, min_total: int = 200) -> Iterator[Any]:
    """A tqdm bar over `total` items (call `.update(n)`), or None below `min_total` items or when disabled."""
    if total < min_total or not _bars_enabled:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()
