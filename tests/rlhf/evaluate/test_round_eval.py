"""Round evaluation with sampled answers: K seeded samples per held-out prompt, win rates on per-prompt means."""

import json

import pytest
from pydantic import ValidationError

from chatalign.errors import RunError
from chatalign.rlhf.config import RLHFRoundConfig
from chatalign.rlhf.evaluate.heldout import compare, paired_gain, per_prompt_means
from chatalign.rlhf.evaluate.rerun import reevaluate_round
from chatalign.rlhf.round import run_round

from ..conftest import by_text, round_cfg, rows


def _rows(key, values):
    return [{"prompt_key": key, "r_combined": v} for v in values]


def test_per_prompt_means_and_compare_by_hand():
    a = _rows("p1", [0.2, 0.6]) + _rows("p2", [0.9, 0.1]) + _rows("p3", [0.5, 0.5])
    b = _rows("p1", [0.3, 0.3]) + _rows("p2", [0.6, 0.6]) + _rows("p3", [0.2, 0.8])
    assert per_prompt_means(a) == pytest.approx([0.4, 0.5, 0.5])
    assert per_prompt_means(b) == pytest.approx([0.3, 0.6, 0.5])
    # p1: 0.4 > 0.3 win; p2: 0.5 < 0.6 loss; p3: tie -> 1/1/1, win rate 1 / (1 + 1)
    assert compare(a, b) == {"win": 1, "loss": 1, "tie": 1, "win_rate": 0.5}


def test_paired_gain_by_hand():
    a = _rows("p1", [0.2, 0.6]) + _rows("p2", [0.9, 0.1]) + _rows("p3", [0.5, 0.5])
    b = _rows("p1", [0.3, 0.3]) + _rows("p2", [0.6, 0.6]) + _rows("p3", [0.2, 0.8])
    # differences of prompt means: 0.1, -0.1, 0.0 -> mean 0; sample sd sqrt((0.01 + 0.01 + 0) / 2) = 0.1;
    # SE = 0.1 / sqrt(3)
    g = paired_gain(a, b)
    assert g["n"] == 3 and g["gain"] == pytest.approx(0.0, abs=1e-12) and g["se"] == pytest.approx(0.1 / 3 ** 0.5)
    c = _rows("p1", [0.5]) + _rows("p2", [0.8]) + _rows("p3", [0.6])
    # 0.5-0.4, 0.8-0.5, 0.6-0.5 = 0.1, 0.3, 0.1 -> mean 5/30; deviations -2/30, 4/30, -2/30 -> sample variance
    # (4 + 16 + 4) / 900 / 2 = 12/900; SE = sqrt(12)/30 / sqrt(3) = 2/30
    g = paired_gain(c, a)
    assert g["gain"] == pytest.approx(5 / 30) and g["se"] == pytest.approx(2 / 30)


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


def test_rlhf_eval_reruns_the_comparison_of_a_finished_round(rlhf_files, tmp_path):
    cfg = round_cfg(rlhf_files, tmp_path / "r", rlhf_files / "policy", "rs", eval={"max_new_tokens": 6})
    with pytest.raises(RunError, match="no finished RLHF round"):
        reevaluate_round(cfg, progress=False, reward_fn=by_text)
    summary = run_round(cfg, progress=False, reward_fn=by_text)
    manifest_before = (tmp_path / "r" / "manifest.json").read_text()
    again = round_cfg(rlhf_files, tmp_path / "r", rlhf_files / "policy", "rs",
                      eval={"max_new_tokens": 6, "temperature": 1.0, "samples_per_prompt": 2, "seed": 3})
    out, out_dir = reevaluate_round(again, progress=False, reward_fn=by_text)
    assert out_dir == tmp_path / "r" / "eval_n4_k2_T1.0_seed3"
    this, prev = rows(out_dir / "answers_this.jsonl"), rows(out_dir / "answers_previous.jsonl")
    assert len(this) == len(prev) == 4 * 2
    assert out["heldout_reward_this"] == pytest.approx(sum(r["r_combined"] for r in this) / 8)
    assert out["gain_vs_previous"] == pytest.approx(paired_gain(this, prev)["gain"])
    assert out["gain_vs_previous"] == pytest.approx(out["heldout_reward_this"] - out["heldout_reward_previous"])
    saved = json.loads((out_dir / "summary.json").read_text())
    assert saved["setting"]["samples_per_prompt"] == 2 and saved["wins_vs_previous"] == out["wins_vs_previous"]
    assert "± " in (out_dir / "report.md").read_text()
    # the round itself is untouched: its greedy evaluation, manifest and report stay as they were
    assert (tmp_path / "r" / "manifest.json").read_text() == manifest_before
    assert len(rows(tmp_path / "r" / "eval" / "answers_this.jsonl")) == 4
    assert "gain_vs_previous" in summary and "R_c gain of this ± SE" in (tmp_path / "r" / "report.md").read_text()

    # from the command line, the config read from the round's manifest, scored by the two (tiny) reward models
    from chatalign.cli.main import main

    assert main(["rlhf", "eval", str(tmp_path / "r"), "eval.temperature=1.0", "eval.samples_per_prompt=2",
                 "data.max_heldout=3", "--no-progress"]) == 0
    saved = json.loads((tmp_path / "r" / "eval_n3_k2_T1.0_seed0" / "summary.json").read_text())
    assert saved["setting"]["heldout_prompts"] == 3 and 0 < saved["heldout_reward_this"] < 1


def test_rlhf_eval_command_line_mistakes(tmp_path, capsys):
    from chatalign.cli.main import main

    assert main(["rlhf", "eval", "eval.seed=1"]) == 2
    assert "run directory or --config" in capsys.readouterr().err
    assert main(["rlhf", "eval", str(tmp_path)]) == 2
    assert "not an RLHF round's run directory" in capsys.readouterr().err


def test_early_stopping_can_use_the_first_held_out_prompts_only(rlhf_files, tmp_path):
    from chatalign.rlhf.rs.selection import prompt_key, read_jsonl

    heldout = [prompt_key(p) for p in read_jsonl(rlhf_files / "heldout.jsonl")]
    seen: list[set] = []

    def recording(prompts, texts, ids):
        seen.append({prompt_key(p) for p in prompts})
        return by_text(prompts, texts, ids)

    cfg = round_cfg(rlhf_files, tmp_path / "r", rlhf_files / "policy", "ppo",
                    ppo={"iterations": 2, "batch_prompts": 4, "minibatch": 2, "max_new_tokens": 6,
                         "gen_batch_size": 4, "score_batch_size": 4, "optim": {"lr": 1e-3},
                         "early_stopping": {"eval_every": 1, "patience": 5, "max_prompts": 2}})
    summary = run_round(cfg, progress=False, reward_fn=recording)
    on_heldout = [s for s in seen if s <= set(heldout)]
    # early stopping at iterations 0, 1, 2 on the first two held-out prompts; the round's evaluation of its
    # model and of the previous one (= the start) on all four
    assert on_heldout.count(set(heldout[:2])) == 3 and on_heldout.count(set(heldout)) == 2
    assert len(on_heldout) == 3 + 2 and summary["wins_vs_previous"].count("/") == 2
