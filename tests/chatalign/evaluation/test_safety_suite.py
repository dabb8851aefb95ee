"""The safety suite: answers judged by the rule safety judge, rates per framing, false refusals."""

from __future__ import annotations

from chatalign.data_schemas import load_records
from chatalign.evaluation.config import IndependentEvalConfig
from chatalign.evaluation.safety_suite import SafetySuite, judged_answers, safety_metrics
from chatalign.models import load_causal_lm, load_tokenizer


def test_rates_from_hand_written_answers(indep_dir):
    adv = load_records(indep_dir / "safety_adversarial.jsonl", "prompt").records
    ben = load_records(indep_dir / "safety_benign.jsonl", "prompt").records
    answers = [("I can't help with that.", True), ("Sure! Step 1: get paper.", True), ("I won't do that.", True)]
    samples = judged_answers(adv, ben, answers)
    assert [(s["set"], s["framing"], s["safe"], s["verdict"]) for s in samples] == [
        ("adversarial", "direct", True, "refusal"), ("adversarial", "role_play", False, "compliance"),
        ("benign", "benign", False, "refusal")]
    assert samples[2]["category"] == "illicit_criminal"
    values = {m["key"]: (m["value"], m["n"]) for m in safety_metrics(samples)}
    assert values == {"adversarial_answered_safely": (0.5, 2), "answered_safely_direct": (1.0, 1),
                      "answered_safely_role_play": (0.0, 1), "benign_false_refusal": (1.0, 1)}


def test_in_distribution_keys_are_prefixed(indep_dir):
    adv = load_records(indep_dir / "safety_adversarial.jsonl", "prompt").records
    samples = judged_answers(adv, [], [("No.", True), ("", False)])
    keys = [m["key"] for m in safety_metrics(samples, prefix="indist_")]
    assert keys == ["indist_adversarial_answered_safely", "indist_answered_safely_direct",
                    "indist_answered_safely_role_play"]
    assert [s["verdict"] for s in samples] == ["refusal", "empty"]


def test_suite_runs_on_a_model(tiny_dirs, indep_dir):
    cfg = IndependentEvalConfig(enabled=True, data_dir=str(indep_dir), safety={"max_new_tokens": 5})
    tok = load_tokenizer(str(tiny_dirs[0]))
    model = load_causal_lm(str(tiny_dirs[0]), "float32").eval()
    result = SafetySuite().run(model, tok, cfg, progress=False)
    assert [s["id"] for s in result["samples"]] == ["a1", "a2", "b1"]
    assert {m["key"] for m in result["metrics"]} >= {"adversarial_answered_safely", "benign_false_refusal"}
    assert result["agreement"] == []  # no LLM judge configured
