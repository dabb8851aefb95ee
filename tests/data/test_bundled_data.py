"""The bundled quickstart data: parses, sizes, train/held-out separation, checks vs references, safety labels,
and byte-for-byte reproduction by data/quickstart/generate.py."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from random import Random

import pytest
import yaml

from chatalign.judges.rules import is_refusal, run_check

DATA = Path(__file__).resolve().parents[2] / "data" / "quickstart"
sys.path.insert(0, str(DATA))  # the generator's own modules (qsgen), for the generator-level tests

from qsgen import pools  # noqa: E402
from qsgen.conversations import TASKS  # noqa: E402

ROW_COUNTS = {  # file -> (min, max) rows
    "sft_train.jsonl": (350, 450),
    "sft_heldout.jsonl": (50, 80),
    "pref_helpful_train.jsonl": (450, 550),
    "pref_helpful_heldout.jsonl": (120, 180),
    "pref_safety_train.jsonl": (450, 550),
    "pref_safety_heldout.jsonl": (120, 180),
    "prompts_train.jsonl": (180, 220),
    "prompts_heldout.jsonl": (50, 80),
    "safety_adversarial_train.jsonl": (100, 140),
    "safety_adversarial_heldout.jsonl": (50, 80),
    "safety_borderline.jsonl": (50, 80),
    "helpful_eval.jsonl": (30, 50),
    "gatt_dialogues.jsonl": (70, 90),
    "gatt_dialogues_heldout.jsonl": (35, 45),
}
YAML_FILES = ("safety_templates.yaml", "gatt_constraints.yaml")
TRAIN_FILES = (
    "sft_train.jsonl",
    "pref_helpful_train.jsonl",
    "pref_safety_train.jsonl",
    "prompts_train.jsonl",
    "safety_adversarial_train.jsonl",
    "gatt_dialogues.jsonl",
)
HELDOUT_FILES = tuple(name for name in ROW_COUNTS if name not in TRAIN_FILES)
PROMPT_FILES = (
    "sft_heldout.jsonl",
    "prompts_train.jsonl",
    "prompts_heldout.jsonl",
    "safety_adversarial_train.jsonl",
    "safety_adversarial_heldout.jsonl",
    "safety_borderline.jsonl",
    "helpful_eval.jsonl",
)
PREFERENCE_FILES = (
    "pref_helpful_train.jsonl",
    "pref_helpful_heldout.jsonl",
    "pref_safety_train.jsonl",
    "pref_safety_heldout.jsonl",
)
STRENGTHS = {"significantly_better", "better", "slightly_better", "negligibly_better", "unsure"}
RISK_CATEGORIES = {"illicit_criminal", "hateful_harmful", "unqualified_advice"}
ATTACK_STYLES = {"direct", "role_play", "hypothetical", "novel", "obfuscation"}


def rows(name: str) -> list[dict]:
    with open(DATA / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def user_texts(row: dict) -> list[str]:
    if "user_turns" in row:
        return row["user_turns"]
    messages = row.get("messages") or row.get("prompt")
    return [m["content"] for m in messages if m["role"] == "user"]


def check_messages(messages: list[dict], last_role: str) -> None:
    assert messages and all(set(m) == {"role", "content"} for m in messages)
    roles = [m["role"] for m in messages]
    assert set(roles) <= {"system", "user", "assistant"} and "system" not in roles[1:]
    turns = roles[1:] if roles[0] == "system" else roles
    assert turns[0] == "user" and turns[-1] == last_role
    assert all(a != b for a, b in zip(turns, turns[1:], strict=False)), "user and assistant alternate"
    assert all(m["content"].strip() for m in messages)


def test_every_file_parses_and_row_counts_are_in_range():
    committed = {p.name for p in DATA.iterdir() if p.suffix in (".jsonl", ".yaml")}
    assert committed == set(ROW_COUNTS) | set(YAML_FILES)
    for name, (lo, hi) in ROW_COUNTS.items():
        data = rows(name)
        assert lo <= len(data) <= hi, name
        assert len({r["id"] for r in data}) == len(data), f"{name}: ids are unique"
    for name in YAML_FILES:
        assert isinstance(yaml.safe_load((DATA / name).read_text(encoding="utf-8")), dict)


def test_sft_conversations_are_well_formed_short_and_often_multi_turn():
    data = rows("sft_train.jsonl")
    for row in data:
        assert set(row) == {"id", "messages", "tags"}
        check_messages(row["messages"], last_role="assistant")
        assert row["tags"][0] in TASKS
    multi = [r for r in data if len(user_texts(r)) >= 2]
    assert len(multi) >= 0.3 * len(data)
    assert max(len(user_texts(r)) for r in data) == 3
    answers = [m["content"] for r in data for m in r["messages"] if m["role"] == "assistant"]
    assert max(len(a.split()) for a in answers) <= 45  # ~60 tokens: training runs at ~150 tokens/s on CPU
    assert {r["tags"][0] for r in data} == set(TASKS)


def test_prompt_rows_end_with_a_user_turn_and_carry_a_valid_check():
    for name in PROMPT_FILES:
        for row in rows(name):
            check_messages(row["messages"], last_role="user")
            run_check("", row["check"])  # a malformed spec raises whatever the answer
            assert isinstance(row["is_safety"], bool) and row["tags"]
            if row["is_safety"]:
                assert row["risk_category"] in RISK_CATEGORIES and row["check"] == {"type": "refusal"}
                assert row["tags"] == [row["tags"][0]] and row["tags"][0] in ATTACK_STYLES
            else:
                assert "risk_category" not in row


def test_every_heldout_reference_passes_its_check():
    for name in PROMPT_FILES:
        if "train" in name:
            assert all("reference" not in r for r in rows(name)), name
            continue
        for row in rows(name):
            assert run_check(row["reference"], row["check"]), (
                name,
                row["id"],
                row["reference"],
                row["check"],
            )


def test_no_heldout_user_text_appears_in_any_train_file():
    train = {t for name in TRAIN_FILES for r in rows(name) for t in user_texts(r)}
    heldout = {t for name in HELDOUT_FILES for r in rows(name) for t in user_texts(r)}
    assert train and heldout
    assert not train & heldout


def test_pools_split_values_apart():
    assert not set(pools.numbers("train", 0, 3000)) & set(pools.numbers("heldout", 0, 3000))
    for pool in (
        pools.PEOPLE,
        pools.CITIES,
        pools.JOBS,
        pools.PETS,
        pools.COMPANIES,
        pools.PRODUCTS,
        pools.MONTHS,
        pools.ITEMS,
        pools.BULLET_CATEGORIES,
        pools.DEFINITIONS,
        pools.CASE_PHRASES,
        pools.SORT_WORDS,
    ):
        assert not set(pool["train"]) & set(pool["heldout"])


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_graded_answers_track_the_preference_strength(split):
    """alt and mild pass the rule; moderate and severe fail it: so the label follows a measurable gap."""
    rng = Random(0)
    for task, (make, follow, _) in TASKS.items():
        for _ in range(40):
            sample = make(rng, split)
            variants = [sample] + ([follow(sample, rng, split)] if follow else [])
            for s in variants:
                assert s.task == task
                for good in (s.answer, s.alt, s.mild):
                    assert run_check(good, s.check), (task, good, s.check)
                for bad in (s.moderate, s.severe):
                    assert not run_check(bad, s.check), (task, bad, s.check)
                assert len({s.answer, s.alt, s.mild, s.moderate, s.severe}) == 5


def test_preferences_have_the_schema_and_a_realistic_strength_spread():
    for name in PREFERENCE_FILES:
        data = rows(name)
        for row in data:
            assert set(row) == {
                "id",
                "prompt",
                "chosen",
                "rejected",
                "strength",
                "category",
                "chosen_safe",
                "rejected_safe",
                "source",
            }
            check_messages(row["prompt"], last_role="user")
            assert row["strength"] in STRENGTHS and row["chosen"] != row["rejected"]
            assert row["category"] == ("helpfulness" if "helpful" in name else "safety")
        spread = Counter(r["strength"] for r in data)
        assert set(spread) == STRENGTHS and min(spread.values()) >= 0.03 * len(data), (name, spread)


def test_helpful_pairs_are_both_safe_and_strength_matches_the_grade():
    grade = {
        "significantly_better": "severe",
        "better": "moderate",
        "slightly_better": "mild",
        "negligibly_better": "alt",
        "unsure": "alt",
    }
    for name in ("pref_helpful_train.jsonl", "pref_helpful_heldout.jsonl"):
        for row in rows(name):
            assert row["chosen_safe"] and row["rejected_safe"]
            assert row["source"].split(":")[-1] == grade[row["strength"]]


def test_safety_pairs_are_binned_by_safety_and_refusal_matches_the_label():
    for name in ("pref_safety_train.jsonl", "pref_safety_heldout.jsonl"):
        data = rows(name)
        bins = Counter((r["chosen_safe"], r["rejected_safe"]) for r in data)
        assert set(bins) == {(True, False), (True, True), (False, False), (False, True)}
        flipped = bins[(False, True)] / len(data)
        assert 0.02 <= flipped <= 0.05, "a few chosen-unsafe pairs, for the reward stage to exclude and count"
        for row in data:
            _, _, bin_name, category, style = row["source"].split(":")
            assert category in RISK_CATEGORIES and style in ATTACK_STYLES | {"borderline"}
            borderline = bin_name == "both_safe_borderline"
            assert borderline == (style == "borderline")
            for answer, safe in (
                (row["chosen"], row["chosen_safe"]),
                (row["rejected"], row["rejected_safe"]),
            ):
                if not safe:  # unsafe answers are placeholders with the steps withheld, never instructions
                    assert "withheld" in answer and not is_refusal(answer), answer
                elif borderline and answer == row["chosen"]:
                    assert not is_refusal(answer)  # the helpful answer to a look-alike prompt
                else:
                    assert is_refusal(answer), answer
        assert {r["source"].split(":")[2] for r in data} == {
            "safe_vs_unsafe",
            "both_safe_borderline",
            "both_safe_refusals",
            "both_unsafe",
            "flipped",
        }


def test_safety_prompt_files_cover_every_category_and_attack_style():
    for name in ("safety_adversarial_train.jsonl", "safety_adversarial_heldout.jsonl"):
        data = rows(name)
        assert all(r["is_safety"] for r in data)
        assert {(r["risk_category"], r["tags"][0]) for r in data} == {
            (c, s) for c in RISK_CATEGORIES for s in ATTACK_STYLES
        }
    for name in ("prompts_train.jsonl", "prompts_heldout.jsonl"):
        share = sum(r["is_safety"] for r in rows(name)) / len(rows(name))
        assert 0.2 <= share <= 0.4
    borderline = rows("safety_borderline.jsonl")
    assert all(r["check"] == {"type": "no_refusal"} and not r["is_safety"] for r in borderline)
    assert all(r["check"] == {"type": "no_refusal"} for r in rows("helpful_eval.jsonl"))


def test_yaml_files_hold_the_preprompt_templates_and_gatt_constraints():
    safety = yaml.safe_load((DATA / "safety_templates.yaml").read_text(encoding="utf-8"))
    assert safety["preprompt"].startswith("You are a safe and responsible assistant")
    assert set(safety["answer_templates"]) == RISK_CATEGORIES
    kinds = yaml.safe_load((DATA / "gatt_constraints.yaml").read_text(encoding="utf-8"))["kinds"]
    from chatalign.gatt.instructions import KINDS

    assert set(kinds) == set(KINDS)  # every training kind has wordings, and no held-out kind slipped in
    assert all(spec["full"] and spec["terse"] for spec in kinds.values())
    assert len(kinds["hobby"]["values"]) >= 15 and len(kinds["public_figure"]["values"]) >= 12
    languages = {v[1] if isinstance(v, list) else v["code"] for v in kinds["language"]["values"]}
    assert languages and not languages & {"nl", "sv"}  # the independent set's new languages stay unseen


def test_gatt_dialogues_are_user_only_sequences_of_6_to_20_everyday_questions():
    for name in ("gatt_dialogues.jsonl", "gatt_dialogues_heldout.jsonl"):
        data = rows(name)
        for row in data:
            assert set(row) == {"id", "user_turns"}
            assert 6 <= len(row["user_turns"]) <= 20
            assert len(set(row["user_turns"])) == len(row["user_turns"])
        assert any(len(r["user_turns"]) == 20 for r in data), "turn-20 adherence needs 20-turn dialogues"


def test_the_generator_reproduces_the_committed_files_byte_for_byte(tmp_path):
    subprocess.run(
        [sys.executable, str(DATA / "generate.py"), "--out", str(tmp_path)], check=True, capture_output=True
    )
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(set(ROW_COUNTS) | set(YAML_FILES))
    for name in names:
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), f"{name} differs: regenerate it"


def test_another_seed_gives_other_data(tmp_path):
    subprocess.run(
        [sys.executable, str(DATA / "generate.py"), "--out", str(tmp_path), "--seed", "7"],
        check=True,
        capture_output=True,
    )
    assert (tmp_path / "sft_train.jsonl").read_bytes() != (DATA / "sft_train.jsonl").read_bytes()


def test_files_load_as_canonical_records_of_data_schemas():
    from chatalign.data_schemas.readers import load_records

    kinds = {name: "prompt" for name in PROMPT_FILES} | {name: "preference" for name in PREFERENCE_FILES}
    kinds["sft_train.jsonl"] = "conversation"
    for name, kind in kinds.items():
        result = load_records(DATA / name, kind)
        assert len(result.records) == len(rows(name)), name
        # `reference` (held-out answers for the check tests) is the one field a Prompt record may not know.
        assert set().union(*result.ignored_fields.values()) <= {"reference"}, name
