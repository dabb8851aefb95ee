"""End to end: a tiny random Llama trained a few steps on a separable toy set beats chance on held-out
pairs; the run directory holds a loadable HF RM, metrics, the report and its plots; the scorer API."""

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from chatalign.reward.run import run_reward

from .conftest import toy_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory, toy_files, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("e2e")
    train, held = toy_files
    summary = run_reward(toy_config(tmp, train, held, model=tiny_model_dir), progress=False)
    return tmp / "run", summary


def test_tiny_rm_learns_a_separable_set(trained):
    run, summary = trained
    assert summary["steps"] == 20 and summary["pairs"] == 30
    assert summary["eval_pairs"] == 10
    assert summary["eval_accuracy"] >= 0.9, summary  # chance is 0.5
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["stage"] == "reward"
    assert manifest["data"]["sources"]["toy"]["usable"] == 30
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 20 and metrics[-1]["loss"] < metrics[0]["loss"]
    assert all(m["pairs"] <= 6 for m in metrics) and "accuracy" in metrics[0]


def test_run_directory_has_model_report_and_plots(trained):
    run, _ = trained
    for name in ("report.md", "eval.json", "eval_accuracy.png", "eval_scores.png", "training.png"):
        assert (run / name).stat().st_size > 0, name
    report = (run / "report.md").read_text()
    assert "significantly_better" in report and "chosen_safe_rejected_unsafe" in report
    assert "## How this RM is read" in report and "read at token '\\n' (id 198)" in report
    assert "`pad_token_id` = 2 ('<|im_end|>')" in report
    ev = json.loads((run / "eval.json").read_text())
    assert set(ev["per_strength"]) == {"significantly_better", "better", "slightly_better", "negligibly_better"}
    assert set(ev["per_safety_bin"]) == {"chosen_safe_rejected_unsafe", "both_safe"}
    assert set(ev["per_source"]) == {"toy:odd", "toy:even"}
    rm = AutoModelForSequenceClassification.from_pretrained(run / "model")
    assert rm.config.num_labels == 1 and type(rm).__name__ == "LlamaForSequenceClassification"


def test_scorer_api_on_the_trained_run(trained):
    from chatalign.reward import load_scorer

    run, _ = trained
    scorer = load_scorer(run, device="cpu")
    prompts = [[{"role": "user", "content": "Tell me about snow."}]] * 2
    answers = ["I love snow, they are wonderful.", "I hate snow, they are awful."]
    raw = scorer.score(prompts, answers)
    assert raw.shape == (2,) and raw.dtype == torch.float32 and raw[0] > raw[1]
    probs = scorer.score(prompts, answers, sigmoid=True, batch_tokens=32)  # one sequence per forward
    assert torch.allclose(probs, torch.sigmoid(raw), atol=1e-5)
    assert ((probs > 0) & (probs < 1)).all()
    with pytest.raises(ValueError, match="2 prompts but 1 answers"):
        scorer.score(prompts, ["x"])


STANDARD_API_CONVERSATIONS = [
    [{"role": "user", "content": "Tell me about snow."},
     {"role": "assistant", "content": "I love snow, it is wonderful."}],
    [{"role": "user", "content": "Tell me about snow."}, {"role": "assistant", "content": "I hate snow."}],
    [{"role": "system", "content": "Answer in one line."}, {"role": "user", "content": "Tell me about owls."},
     {"role": "assistant", "content": "Owls? They are awful."}, {"role": "user", "content": "And kites?"},
     {"role": "assistant", "content": "I love kites, they are wonderful."}],
]


def test_the_standard_api_scores_as_our_scorer(trained):
    """AutoModelForSequenceClassification fed tokenizer.apply_chat_template(conversation), alone or
    batched with padding on either side, gives our scorer's score."""
    from transformers import AutoTokenizer

    from chatalign.reward import load_scorer

    run, _ = trained
    ours = load_scorer(run, device="cpu").score([c[:-1] for c in STANDARD_API_CONVERSATIONS],
                                                [c[-1]["content"] for c in STANDARD_API_CONVERSATIONS])
    assert ours[0] - ours[1] > 0.1  # a trained RM: the comparison is not of near-equal numbers
    rm = AutoModelForSequenceClassification.from_pretrained(run / "model").eval()
    tok = AutoTokenizer.from_pretrained(run / "model")
    with torch.no_grad():
        single = [rm(**tok.apply_chat_template(c, return_tensors="pt", return_dict=True)).logits[0, 0].item()
                  for c in STANDARD_API_CONVERSATIONS]
        assert single == pytest.approx(ours.tolist(), abs=1e-4)
        for side in ("right", "left"):
            tok.padding_side = side
            batch = tok.apply_chat_template(STANDARD_API_CONVERSATIONS, return_tensors="pt", return_dict=True,
                                            padding=True)
            assert (batch["attention_mask"] == 0).any()  # padding really happened
            assert rm(**batch).logits[:, 0].tolist() == pytest.approx(ours.tolist(), abs=1e-4), side


def test_a_finished_run_is_not_overwritten(trained, toy_files, tiny_model_dir):
    from chatalign.errors import RunError

    run, _ = trained
    train, held = toy_files
    with pytest.raises(RunError, match="already holds a finished reward run"):
        run_reward(toy_config(run.parent, train, held, model=tiny_model_dir), progress=False)
