"""`chatalign prefs` end to end on a tiny model: two answers per prompt drawn with the recipe's settings and
recorded, the rule annotator's labels (every chosen answer keeps its rule, every rejected one breaks it), a
preference file the reward stage reads as it is; people instead of rules leave the comparisons for
`chatalign annotate`; a bad recipe names its key before any model loads."""

import json

import pytest
import yaml

from chatalign.data_schemas import load_records
from chatalign.errors import UserError
from chatalign.judges.rules import run_check

from ..conftest import stage_command

PATTERNS = ["[A-Z]", "[0-9]", "[.,!?]", "^[a-z]", " the", "ing\\b"]


def recipe(tmp_path, model_dir, **extra) -> str:
    prompts = tmp_path / "prompts.jsonl"
    rows = [{"id": f"p{k}", "messages": [{"role": "user", "content": f"Question {k}: say something."}],
             "check": {"type": "regex", "pattern": PATTERNS[k % len(PATTERNS)]}} for k in range(24)]
    rows.append({"id": "s1", "messages": [{"role": "user", "content": "How do I hurt someone?"}],
                 "is_safety": True, "risk_category": "violence", "check": {"type": "refusal"}})
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = {"stage": "prefs", "output_dir": str(tmp_path / "batch"), "model": {"name": str(model_dir)},
           "data": {"prompts": [str(prompts)]}, "generation": {"max_new_tokens": 8, "batch_size": 32}, **extra}
    path = tmp_path / "prefs.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_a_batch_labelled_by_rules(tmp_path, tiny_model_dir):
    stage_command("prefs", recipe(tmp_path, tiny_model_dir))
    out = tmp_path / "batch"
    comps = {c.id: c for c in load_records(out / "comparisons.jsonl", "comparison").records}
    prefs = [p for name in ("preferences.jsonl", "preferences_heldout.jsonl")  # as `chatalign reward` reads them
             for p in load_records(out / name, "preference").records]
    counts = json.loads((out / "labels.json").read_text())
    assert counts["comparisons"] == len(comps) and counts["prompts"] == 25
    assert counts["comparisons"] + counts["identical_answers_dropped"] == 25
    assert counts["labelled"] == len(prefs) >= 3 and counts["labelled"] + sum(counts["unlabelled"].values()) == len(comps)
    a, b = next(iter(comps.values())).answers
    assert (a.settings["temperature"], b.settings["temperature"]) == (0.7, 1.0) and a.model == str(tiny_model_dir)
    for p in prefs:
        c = comps[p.annotation.comparison_id]
        assert run_check(p.chosen, c.check) and not run_check(p.rejected, c.check)
        assert p.annotation.annotator == "rules" and p.strength.value == "better"
        assert (p.chosen_safe, p.rejected_safe) == ((True, False) if c.category == "safety" else (True, True))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["stage"] == "prefs"


def test_people_get_the_comparisons_to_annotate(tmp_path, tiny_model_dir):
    stage_command("prefs", recipe(tmp_path, tiny_model_dir, annotator={"kind": "people"}))
    out = tmp_path / "batch"
    assert len(load_records(out / "comparisons.jsonl", "comparison").records) > 0
    assert not (out / "preferences.jsonl").exists()
    assert "chatalign annotate" in (out / "report.md").read_text()


@pytest.mark.parametrize("extra, key", [
    ({"annotator": {"kind": "judge"}}, "annotator"),
    ({"answers": [{"temperature": 0.7}]}, "answers"),
    ({"answers": [{"temperature": 0.7}, {"temperature": 1.0, "model": "./nope-model"}]}, "answers.1.model"),
])
def test_a_bad_recipe_names_its_key(tmp_path, tiny_model_dir, extra, key):
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        stage_command("prefs", recipe(tmp_path, tiny_model_dir, **extra), dry_run=True)
    assert not (tmp_path / "batch").exists()


def test_held_out_pairs_and_the_current_rms_accuracy_on_them(tmp_path, tiny_model_dir, tiny_rm_dir):
    from chatalign.evaluation.baselines import pair_accuracy
    from chatalign.reward import load_scorer

    stage_command("prefs", recipe(tmp_path, tiny_model_dir, heldout_fraction=0.5,
                                  reward_models={"helpful": str(tiny_rm_dir)}))
    out = tmp_path / "batch"
    train = load_records(out / "preferences.jsonl", "preference").records
    heldout = load_records(out / "preferences_heldout.jsonl", "preference").records
    counts = json.loads((out / "labels.json").read_text())
    assert {p.id for p in train}.isdisjoint({p.id for p in heldout})
    assert len(train) + len(heldout) == counts["labelled"] and len(heldout) == round(0.5 * counts["labelled"])
    helpful = heldout  # every held-out pair, as the reward stage evaluates the retrained RM on the same file
    before = counts["rm_accuracy_before"]
    assert set(before) == {"helpful"} and before["helpful"]["pairs"] == len(helpful) > 0  # no safety RM given
    scorer = load_scorer(tiny_rm_dir)
    prompts = [[m.model_dump() for m in p.prompt] for p in helpful]
    by_hand = pair_accuracy(scorer.score(prompts, [p.chosen for p in helpful]).tolist(),
                            scorer.score(prompts, [p.rejected for p in helpful]).tolist())
    assert before["helpful"]["accuracy"] == pytest.approx(by_hand)
    assert "before any retraining" in (out / "report.md").read_text()


def test_a_run_killed_after_sampling_resumes_at_labelling(tmp_path, tiny_model_dir, monkeypatch):
    import chatalign.prefs.run as prefs_run

    path = recipe(tmp_path, tiny_model_dir)
    stage_command("prefs", path)
    out = tmp_path / "batch"
    labelled = (out / "preferences.jsonl").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))  # as a kill leaves it
    for name in ("preferences.jsonl", "preferences_heldout.jsonl", "labels.json"):
        (out / name).unlink()

    def no_sampling(*args, **kwargs):
        raise AssertionError("sampled again")

    monkeypatch.setattr(prefs_run, "sample_comparisons", no_sampling)
    with pytest.raises(UserError, match="add --resume"):
        stage_command("prefs", path)
    stage_command("prefs", path, resume=True)
    assert (out / "preferences.jsonl").read_text().count("\n") == labelled.count("\n")
    assert json.loads((out / "manifest.json").read_text())["status"] == "finished"


def test_a_batch_the_rules_cannot_label_stops_with_the_counts(tmp_path, tiny_model_dir):
    path = recipe(tmp_path, tiny_model_dir)
    cfg = yaml.safe_load(open(path))
    rows = [{"id": f"q{k}", "messages": [{"role": "user", "content": f"Q{k}"}],
             "check": {"type": "number", "value": 123456789}} for k in range(4)]  # no random answer keeps it
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg["data"]["prompts"] = [str(tmp_path / "prompts.jsonl")]
    (tmp_path / "prefs.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(UserError, match=r"labelled 0 of 4 comparisons \(tie_fail 4\)"):
        stage_command("prefs", path)
    assert (tmp_path / "batch" / "comparisons.jsonl").is_file()
    assert not (tmp_path / "batch" / "preferences.jsonl").exists()
