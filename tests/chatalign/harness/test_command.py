"""`chatalign eval harness` for real: lm-eval on tiny models and a task defined on local files, each column equal to
the accuracy worked out here from the models' own log-likelihoods; the cache, the errors a user meets."""

from __future__ import annotations

import json
import sys

import pytest

from chatalign.cli.main import main

pytest.importorskip("lm_eval", reason="the harness extra (pip install 'chatalign[harness]') is in the dev install")

DOCS = [("What colour is the sky on a clear day?", ["blue", "green", "red"], 0),
        ("How many wheels does a bicycle have?", ["one", "two", "five"], 1),
        ("Which animal barks?", ["cat", "fish", "dog"], 2),
        ("What do you drink when thirsty?", ["water", "sand", "glass"], 0),
        ("Which is a fruit?", ["carrot", "apple", "potato"], 1),
        ("What falls from clouds?", ["rain", "rocks", "bread"], 0)]


def write_task(folder):
    folder.mkdir()
    with open(folder / "docs.jsonl", "w") as f:
        for q, choices, answer in DOCS:
            f.write(json.dumps({"question": q, "choices": choices, "answer": answer}) + "\n")
    (folder / "tiny_mc.yaml").write_text(
        "task: tiny_mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: docs.jsonl\ntest_split: test\n"
        "output_type: multiple_choice\ndoc_to_text: \"Q: {{question}}\\nA:\"\ndoc_to_choice: \"{{choices}}\"\n"
        "doc_to_target: \"{{answer}}\"\nmetric_list:\n  - metric: acc\nmetadata:\n  version: 1.0\n")
    return folder / "tiny_mc.yaml"


def accuracy_by_hand(model_dir) -> float:
    """Pick the choice with the highest summed log-probability after the context (lm-eval's `acc`)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    right = 0
    for q, choices, answer in DOCS:
        context = f"Q: {q}\nA:"
        context_ids = tok(context).input_ids
        scores = []
        for choice in choices:
            ids = tok(context + " " + choice).input_ids
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([ids[:-1]])).logits[0].float(), -1)
            scores.append(sum(logp[i - 1, ids[i]].item() for i in range(len(context_ids), len(ids))))
        ranked = sorted(scores, reverse=True)
        assert ranked[0] - ranked[1] > 1e-4, "a near-tie would make the check depend on float noise"
        right += int(scores.index(ranked[0]) == answer)
    return right / len(DOCS)


@pytest.fixture(scope="module")
def two_models(tmp_path_factory, smol_tokenizer):
    from chatalign.models import save_hf_atomic
    from tests.conftest import tiny_llama

    root = tmp_path_factory.mktemp("harness")
    for name, seed in (("model", 0), ("base", 3)):
        save_hf_atomic(tiny_llama(smol_tokenizer, seed=seed), smol_tokenizer, root / name)
    return root / "model", root / "base"


def test_scores_of_model_and_base_match_the_accuracy_worked_by_hand(tmp_path, two_models, monkeypatch, capsys):
    model, base = two_models
    task = write_task(tmp_path / "tasks")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    rc = main(["eval", "harness", str(model), "--tasks", str(task), "--base", str(base), "--out", str(out),
               "--no-progress"])
    assert rc == 0
    record = json.loads((out / "harness.json").read_text())
    (acc,) = [r for r in record["rows"] if r["metric"] == "acc"]
    assert acc["n"] == len(DOCS) and acc["higher_is_better"] is True
    assert acc["model"] == pytest.approx(accuracy_by_hand(model))
    assert acc["base"] == pytest.approx(accuracy_by_hand(base))
    assert record["settings"]["tasks"] == ["tiny_mc"] and record["base_model"] == str(base)
    printed = capsys.readouterr().out
    assert "| tiny_mc | acc |" in printed and "wrote" in printed
    # a second run reads both models from the cache: same rows, and the cache says so in the log
    rc = main(["eval", "harness", str(model), "--tasks", str(task), "--base", str(base), "--out", str(out),
               "--limit", "2", "--no-progress"])
    limited = json.loads((out / "harness.json").read_text())
    assert rc == 0 and [r["n"] for r in limited["rows"]] == [2]


def test_user_mistakes_get_one_line(tmp_path, two_models, monkeypatch, capsys):
    model, _ = two_models
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert main(["eval", "harness", str(model), "--tasks", str(tmp_path / "nope.yaml")]) != 0
    assert "no such task YAML" in capsys.readouterr().err
    assert main(["eval", "harness", str(model), "--tasks", "x.yaml", "--limit", "0"]) != 0
    assert "--limit 0: must be >= 1" in capsys.readouterr().err
    assert main(["eval", "harness", str(tmp_path / "no-model"), "--tasks", "arc_easy", "--base", "none"]) != 0
    assert "no such directory" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # as if the extra were not installed
    assert main(["eval", "harness", str(model), "--tasks", "arc_easy"]) != 0
    err = capsys.readouterr().err
    assert "pip install 'chatalign[harness]'" in err and "Traceback" not in err
