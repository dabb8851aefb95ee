"""The independent evaluation sets share no prompt or answer with the quickstart's data (training, development and
in-distribution evaluation files alike): no pair of texts at word-3-gram Jaccard >= 0.75 (`chatalign data overlap`).
Both sets were written by different authors; a few everyday questions had been written by both."""

from pathlib import Path

from chatalign.text.overlap import data_files, find_overlaps, located_texts

DATA = Path(__file__).resolve().parents[2] / "data"


def test_no_independent_text_near_duplicates_a_quickstart_text():
    independent = located_texts(data_files([DATA / "independent"]))
    quickstart = located_texts(data_files([DATA / "quickstart"]))
    assert len(independent) > 1000 and len(quickstart) > 10000  # the folders were read
    found = find_overlaps(independent, quickstart, threshold=0.75)
    listed = [f"{o.similarity:.2f} {o.eval_text.path}:{o.eval_text.line} ~ {o.train_text.path}:{o.train_text.line}"
              for o in found]
    assert not found, "\n".join(listed[:20])
