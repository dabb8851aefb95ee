"""Labels -> canonical preferences: the side shown maps to chosen/rejected through the recorded order, the
protocol's scales are enforced, and the store keeps every label of every writer."""

import json
import threading

import pytest

from chatalign.annotate.labels import LabelError, LabelStore, person, shown_order, to_preference
from chatalign.data_schemas import BadDataError, Comparison, load_records

from .conftest import COMPARISONS


def comp(i: int = 0) -> Comparison:
    return Comparison.model_validate(COMPARISONS[i])


def test_the_order_is_random_across_comparisons_and_fixed_per_annotator():
    orders = {shown_order(f"c{i}", "person:ann") for i in range(40)}
    assert orders == {(0, 1), (1, 0)}
    assert all(shown_order(f"c{i}", "person:ann") == shown_order(f"c{i}", "person:ann") for i in range(40))


@pytest.mark.parametrize("shown", [(0, 1), (1, 0)])
def test_a_label_names_chosen_rejected_and_what_was_shown_first(shown):
    pref = to_preference(comp(), 0, "better", "both_safe", "person:ann", shown, note="  exact  ")
    assert (pref.chosen, pref.rejected) == ("7 times 8 is 56.", "It is 54.")
    assert pref.strength.value == "better" and (pref.chosen_safe, pref.rejected_safe) == (True, True)
    assert pref.annotation.shown_first == ("chosen" if shown[0] == 0 else "rejected")
    assert pref.annotation.note == "exact" and pref.annotation.comparison_id == "c1"
    assert pref.id == "c1@person:ann" and pref.category == "helpfulness"


def test_the_safety_scale_follows_the_paper():
    pref = to_preference(comp(3), 0, "significantly_better", "better_safe_other_not", "person:ann", (0, 1))
    assert (pref.chosen_safe, pref.rejected_safe) == (True, False)
    pref = to_preference(comp(3), 1, "slightly_better", "both_unsafe", "person:ann", (0, 1))
    assert (pref.chosen_safe, pref.rejected_safe) == (False, False) and pref.chosen.startswith("Use a tension")


@pytest.mark.parametrize("better, strength, safety, needle", [
    (2, "better", "both_safe", "answer 2 does not exist"),
    (0, "much_better", "both_safe", "strength 'much_better' is not on the scale"),
    (0, "better", "chosen_unsafe_other_safe", "safety 'chosen_unsafe_other_safe' is not a label"),
])
def test_a_label_off_the_scale_is_refused_by_name(better, strength, safety, needle):
    with pytest.raises(LabelError, match=needle):
        to_preference(comp(), better, strength, safety, "person:ann", (0, 1))


@pytest.mark.parametrize("name", ["", "  ", "a" * 65, "<script>", "x\ny"])
def test_annotator_names_the_file_cannot_keep_are_refused(name):
    with pytest.raises(LabelError, match="annotator name"):
        person(name)


def test_the_store_replaces_a_relabel_and_keeps_other_annotators(tmp_path):
    store = LabelStore(tmp_path / "labels.jsonl")
    store.save(to_preference(comp(), 0, "better", "both_safe", "person:ann", (0, 1)))
    store.save(to_preference(comp(), 1, "unsure", "both_safe", "person:bob", (0, 1)))
    assert store.save(to_preference(comp(), 0, "slightly_better", "both_safe", "person:ann", (0, 1))) == 2
    rows = load_records(tmp_path / "labels.jsonl", "preference").records  # what `chatalign reward` reads
    assert {(p.annotation.annotator, p.strength.value) for p in rows} == {("person:ann", "slightly_better"),
                                                                         ("person:bob", "unsure")}
    assert store.labelled_by("person:ann") == {"c1"} and store.labelled_by("person:eve") == set()


def test_two_stores_on_one_file_lose_no_label(tmp_path):
    """Two servers (or two tabs) writing at once: each write reads the file under the lock, so none drops the
    other's label (without the lock, interleaved read-modify-writes lose some)."""
    path = tmp_path / "labels.jsonl"
    stores = [LabelStore(path), LabelStore(path)]
    many = [Comparison.model_validate({**COMPARISONS[0], "id": f"c{i}"}) for i in range(40)]

    def label(k: int) -> None:
        for c in many[k::2]:
            stores[k].save(to_preference(c, 0, "better", "both_safe", f"person:p{k}", (0, 1)))

    threads = [threading.Thread(target=label, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(load_records(path, "preference").records) == 40


def test_a_tampered_labels_file_is_refused_naming_line_and_field(tmp_path):
    path = tmp_path / "labels.jsonl"
    store = LabelStore(path)
    store.save(to_preference(comp(), 0, "better", "both_safe", "person:ann", (0, 1)))
    row = json.loads(path.read_text())
    row["strength"] = "way_better"
    path.write_text(path.read_text() + json.dumps(row) + "\n")
    with pytest.raises(BadDataError, match=r"labels.jsonl:2.*strength"):
        LabelStore(path)


def test_a_comparison_needs_two_different_answers(tmp_path):
    path = tmp_path / "c.jsonl"
    bad = [{**COMPARISONS[0], "answers": COMPARISONS[0]["answers"][:1]},
           {**COMPARISONS[1], "answers": [{"text": "Same."}, {"text": "Same."}]}]
    path.write_text("".join(json.dumps(b) + "\n" for b in bad))
    with pytest.raises(BadDataError) as err:
        load_records(path, "comparison")
    text = str(err.value)
    assert "c.jsonl:1" in text and "exactly two answers" in text
    assert "c.jsonl:2" in text and "answers.1.text" in text and "identical" in text
