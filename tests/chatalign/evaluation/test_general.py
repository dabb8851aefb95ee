"""The general suite on a tiny random model: the NLL of reference answers against a plain forward pass worked
out here, the system-instruction answers checked by their rules, per kind and overall."""

from __future__ import annotations

import math

import torch

from chatalign.data_schemas import load_records
from chatalign.evaluation.config import IndependentEvalConfig
from chatalign.evaluation.general import GeneralSuite, answer_nll, instruction_metrics
from chatalign.judges.rules import run_check
from chatalign.models import load_causal_lm, load_tokenizer
from chatalign.text.masks import as_message_dicts, encode_chat


def reference_nll_by_hand(model, tok, conversations):
    """Mean NLL per answer token, one unpacked forward per conversation (labels outside the answer ignored)."""
    total, count = 0.0, 0
    for conv in conversations:
        enc = encode_chat(tok, as_message_dicts(conv.messages), train_on="last_assistant")
        ids = torch.tensor([enc.input_ids])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1].float()
        targets, mask = ids[0, 1:], torch.tensor(enc.loss_mask[1:], dtype=torch.bool)
        nll = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
        total += float(nll[mask].sum())
        count += int(mask.sum())
    return total / count, count


def test_answer_nll_matches_a_plain_forward(tiny_dirs, indep_dir):
    tok = load_tokenizer(str(tiny_dirs[0]))
    model = load_causal_lm(str(tiny_dirs[0]), "float32").eval()
    convs = load_records(indep_dir / "general.jsonl", "conversation").records
    packed, tokens = answer_nll(model, tok, convs, batch_tokens=64)  # several packed rows
    by_hand, count = reference_nll_by_hand(model, tok, convs)
    assert tokens == count and count > 10
    assert math.isclose(packed, by_hand, rel_tol=1e-4)
    assert math.log(len(tok)) * 0.8 < packed < math.log(len(tok)) * 1.2  # a random model: about log(vocab)


def test_only_the_last_answer_counts(tiny_dirs, indep_dir):
    tok = load_tokenizer(str(tiny_dirs[0]))
    model = load_causal_lm(str(tiny_dirs[0]), "float32").eval()
    conv = load_records(indep_dir / "general.jsonl", "conversation").records[2]  # two assistant turns
    last = encode_chat(tok, as_message_dicts(conv.messages), train_on="last_assistant")
    both = encode_chat(tok, as_message_dicts(conv.messages), train_on="all_assistant")
    assert 0 < last.n_trained < both.n_trained
    assert answer_nll(model, tok, [conv])[1] == last.n_trained


def test_instruction_metrics_per_kind_and_overall(indep_dir):
    prompts = load_records(indep_dir / "system_instructions.jsonl", "prompt").records
    answers = [("paris is lovely.", True), ("Sleep restores you. It also helps memory.", True),
               ("Hallo, hoe gaat het met je vandaag? Alles goed hier.", False)]
    metrics, samples = instruction_metrics(prompts, answers)
    values = {m["key"]: m["value"] for m in metrics}
    assert values == {"system_instructions_kept": 2 / 3, "system_kept_lowercase": 1.0,
                      "system_kept_one_sentence": 0.0, "system_kept_new_language": 1.0}
    assert metrics[0]["note"] == "1 of 3 answers cut at max_new_tokens"
    assert [s["kept"] for s in samples] == [True, False, True]


def test_general_suite_on_a_model(tiny_dirs, indep_dir):
    cfg = IndependentEvalConfig(enabled=True, data_dir=str(indep_dir), general={"max_new_tokens": 6})
    tok = load_tokenizer(str(tiny_dirs[0]))
    model = load_causal_lm(str(tiny_dirs[0]), "float32").eval()
    result = GeneralSuite().run(model, tok, cfg, progress=False)
    keys = [m["key"] for m in result["metrics"]]
    assert keys[:2] == ["general_answer_nll", "system_instructions_kept"]
    assert set(keys[2:]) == {"system_kept_lowercase", "system_kept_one_sentence", "system_kept_new_language"}
    assert result["metrics"][0]["n"] == 3 and result["metrics"][1]["n"] == 3
    prompts = load_records(indep_dir / "system_instructions.jsonl", "prompt").records
    for p, s in zip(prompts, result["samples"], strict=True):
        assert s["kept"] == run_check(s["answer"], p.check)  # every answer judged by its own rule
