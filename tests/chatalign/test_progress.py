"""The scoring-loop bar: none for small loops, one that counts every item for large ones, and none at all once
`--no-progress` has disabled bars."""

from chatalign.progress import counting_bar, disable_bars, enable_bars


def test_small_loops_get_no_bar_and_large_ones_count_every_item():
    enable_bars()  # an earlier in-process `main([..., "--no-progress"])` may have turned them off
    with counting_bar(10, "scoring", "answer") as bar:
        assert bar is None
    with counting_bar(300, "scoring", "answer") as bar:
        for _ in range(3):
            bar.update(100)
        assert bar.n == 300 and bar.total == 300


def test_disabled_bars_are_none_whatever_the_size():
    disable_bars()
    try:
        with counting_bar(10_000, "scoring", "answer") as bar:
            assert bar is None
    finally:
        enable_bars()
