"""Round evaluation with sampled answers: K seeded samples per held-out prompt, win rates on per-prompt means."""

import json

import pytest
from pydantic import ValidationError

from chatalign.rlhf.config import RLHFRoundConfig
from chatalign.rlhf.evaluate import compare, per_prompt_means
from chatalign.rlhf.round import run_round

from .test_round import by_text, round_cfg, rows


def _rows(key, values):
    return [{"prompt_key": key, "r_combined": v} for v in values]


def test_per_prompt_means_and_compare_by_hand():
    a = _rows("p1", [0.2, 0.6]) + _rows("p2", [0.9, 0.1]) + _rows("p3", [0.5, 0.5])
    b = _rows("p1", [0.3, 0.3]) + _rows("p2", [0.6, 0.6]) + _rows("p3", [0.2, 0.8])
    assert per_prompt_means(a) == pytest.approx([0.4, 0.5, 0.5])
    assert per_prompt_means(b) == pytest.approx([0.3, 0.6, 0.5])
    # p1: 0.4 > 0.3 win; p2: 0.5 < 0.6 loss; p3: tie -> 1/1/1, win rate 1 / (1 + 1)
    assert compare(a, b) == {"win": 1, "loss": 1, "tie": 1, "win_rate": 0.5}


@pytest.mark.parametrize("section", ["eval", "ppo.early_stopping"])
def test_several_samples_need_a_temperature(rlhf_files, tmp_path, section):
    cfg = round_cfg(rlhf_files, tmp_path / "r", rlhf_files / "policy", "ppo").model_dump()
    node = cfg
    for part in section.split("."):
        node = node[part]
    node.update({"samples_per_prompt": 3, "temperature": 0.0})
    with pytest.raises(ValidationError, match="samples_per_prompt > 1 needs"):
        RLHFRoundConfig.model_validate(cfg)


def test_round_evaluates_k_seeded_samples_per_prompt(rlhf_files, tmp_path):
    sampled = {"temperature": 1.0, "samples_per_prompt": 3}
    cfg = round_cfg(rlhf_files, tmp_path / "r", rlhf_files / "policy", "ppo",
                    ppo={"iterations": 1, "batch_prompts": 4, "minibatch": 2, "max_new_tokens": 6,
                         "gen_batch_size": 4, "score_batch_size": 4, "optim": {"lr": 1e-3},
                         "early_stopping": {"eval_every": 1, **sampled}},
                    eval={"max_new_tokens": 6, "batch_size": 5, **sampled})
    summary = run_round(cfg, progress=False, reward_fn=by_text)
    this = rows(tmp_path / "r" / "eval" / "answers_this.jsonl")
    previous = rows(tmp_path / "r" / "eval" / "answers_previous.jsonl")
    assert len(this) == len(previous) == 4 * 3  # 4 held-out prompts x 3 samples, grouped by prompt
    assert [r["prompt_key"] for r in this] == [r["prompt_key"] for r in previous]
    assert len({r["prompt_key"] for r in this[:3]}) == 1 and len({r["answer"] for r in previous}) > 4
    assert summary["heldout_reward_previous"] == pytest.approx(sum(r["r_combined"] for r in previous) / 12)
    win, loss, tie = map(int, summary["wins_vs_previous"].split("/"))
    assert win + loss + tie == 4  # one comparison per prompt, on its mean
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["status"] == "finished"
    assert "3 sampled answer(s) per prompt at T=1.0" in (tmp_path / "r" / "report.md").read_text()
