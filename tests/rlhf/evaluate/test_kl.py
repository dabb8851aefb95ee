"""KL of the round's model from the models it is compared with, on its own sampled held-out answers."""

import math

import pytest

from chatalign.rlhf.evaluate.kl import kl_from_model, mean_and_se, sequence_kl
from chatalign.rlhf.round import run_round
from chatalign.rlhf.rs.selection import read_jsonl

from ..conftest import by_text, round_cfg, rows


def test_mean_and_se_by_hand():
    # 1, 2, 6: mean 3; deviations -2, -1, 3 -> sample variance (4 + 1 + 9) / 2 = 7; SE sqrt(7 / 3)
    m, se = mean_and_se([1.0, 2.0, 6.0])
    assert m == pytest.approx(3.0) and se == pytest.approx(math.sqrt(7 / 3))
    assert math.isnan(mean_and_se([])[0]) and math.isnan(mean_and_se([4.0])[1]) and mean_and_se([4.0])[0] == 4.0


def test_sequence_kl_by_hand():
    # answers of 2, 3 and 5 tokens; log pi_this - log pi_other = -1 - (-3) = 2, -2 - (-2.5) = 0.5, -4 - (-4.5) = 0.5
    out = sequence_kl([-1.0, -2.0, -4.0], [-3.0, -2.5, -4.5], [2, 3, 5])
    assert out["kl"] == pytest.approx(1.0)  # (2 + 0.5 + 0.5) / 3 answers
    assert out["kl_per_token"] == pytest.approx(0.3)  # 3 nats over 10 tokens
    # deviations 1, -0.5, -0.5 -> sample variance 1.5 / 2 = 0.75; SE sqrt(0.75 / 3) = 0.5
    assert out["kl_se"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        sequence_kl([-1.0], [-1.0, -2.0], [1, 1])


def test_round_reports_the_kl_of_its_model_and_zero_against_itself(rlhf_files, tmp_path):
    sampled = {"temperature": 1.0, "samples_per_prompt": 2}
    cfg = round_cfg(rlhf_files, tmp_path / "r", rlhf_files / "policy", "rs",
                    rs={"optim": {"lr": 1e-2}, "train": {"seq_len": 128, "global_batch_rows": 2, "epochs": 3}},
                    eval={"max_new_tokens": 6, "batch_size": 3, **sampled})
    summary = run_round(cfg, progress=False, reward_fn=by_text)
    this = rows(tmp_path / "r" / "eval" / "answers_this.jsonl")
    assert all(len(r["response_ids"]) == r["n_tokens"] and r["logprob"] <= 0 for r in this)
    assert math.isfinite(summary["kl_vs_previous"]) and summary["kl_se_vs_previous"] > 0
    assert summary["kl_vs_previous"] > 0.01  # fine-tuning on the selected answers (3 epochs, lr 1e-2) moved it
    report = (tmp_path / "r" / "report.md").read_text()
    assert "KL(this ‖ it), nats/answer" in report and f"{summary['kl_vs_previous']:.3f} ± " in report

    # scored again by the very model that sampled them (paired with the right prompts), the KL is 0
    heldout = [p for p in read_jsonl(rlhf_files / "heldout.jsonl") for _ in range(2)]
    self_kl = kl_from_model(this, heldout, str(tmp_path / "r" / "model"), cfg.model)
    assert self_kl["kl"] == pytest.approx(0.0, abs=1e-4) and self_kl["kl_per_token"] == pytest.approx(0.0, abs=1e-4)
    # greedy evaluations (answers not drawn from the model) have no log-probs and report no KL
    assert kl_from_model([{k: v for k, v in r.items() if k != "logprob"} for r in this], heldout,
                         str(tmp_path / "r" / "model"), cfg.model) is None
