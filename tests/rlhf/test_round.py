"""Rounds end to end on tiny models: RS + PPO with the two reward models, the lineage across rounds, pooling
from round 3 on, `rlhf status`."""

import json
import math

import pytest

from chatalign.rlhf.round import run_round

from .conftest import by_text, round_cfg, rows


@pytest.fixture(scope="module")
def round_one(rlhf_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "round1"
    summary = run_round(round_cfg(rlhf_files, out, rlhf_files / "policy", "rs+ppo"), progress=False)
    return out, summary


def test_round_one_rs_and_ppo_with_the_two_reward_models(round_one, rlhf_files):
    out, summary = round_one
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stage"] == "rlhf" and manifest["status"] == "finished"
    assert manifest["rlhf"]["round"] == 1 and manifest["rlhf"]["mode"] == "rs+ppo"
    assert manifest["parents"] == [str((rlhf_files / p).resolve()) for p in ("policy", "rm_helpful", "rm_safety")]
    samples, selected = rows(out / "data" / "samples.jsonl"), rows(out / "data" / "selected.jsonl")
    assert len(samples) == 8 * 3 and len(selected) == 8
    for sel in selected:  # the best of its prompt's K samples, with the scores of both RMs
        mine = [s["r_combined"] for s in samples if s["prompt_key"] == sel["prompt_key"]]
        assert sel["r_combined"] == max(mine) and 0 < sel["r_helpful"] < 1 and 0 < sel["r_safety"] < 1
        if sel["is_safety"]:
            assert sel["r_combined"] == sel["r_safety"]  # piecewise: safety prompts take R_s
    assert len(rows(out / "data" / "sweep_T0.7.jsonl")) == 2 * 3
    assert (out / "rs_sft" / "model" / "config.json").is_file()
    assert (out / "model" / "model.safetensors").is_file()
    ppo = [r for r in rows(out / "metrics.jsonl") if r["step"] >= 1]
    assert [r["step"] for r in ppo] == [1, 2] and all(0 < r["reward_safety"] < 1 for r in ppo)
    assert_win_rate_and_pass_rate_match_the_answers(out / "eval", summary)
    report = (out / "report.md").read_text()
    assert "win rate" in report and "reward_vs_kl.png" in report and "rs_reward_vs_k.png" in report
    for png in ("rs_reward_vs_k.png", "ppo_curves.png", "reward_vs_kl.png"):
        assert (out / png).stat().st_size > 1000


def assert_win_rate_and_pass_rate_match_the_answers(eval_dir, summary) -> None:
    """Recomputed by hand from the answer files the round wrote: per prompt, this model's R_c against the
    previous one's (wins / (wins + losses), ties for neither); the held-out check (at most 3 words) per answer."""
    this, previous = rows(eval_dir / "answers_this.jsonl"), rows(eval_dir / "answers_previous.jsonl")
    assert [r["prompt_key"] for r in this] == [r["prompt_key"] for r in previous] and len(this) == 4
    pairs = [(a["r_combined"], b["r_combined"]) for a, b in zip(this, previous)]  # one answer per prompt
    wins, losses = sum(a > b for a, b in pairs), sum(a < b for a, b in pairs)
    assert summary["wins_vs_previous"] == f"{wins}/{losses}/{len(pairs) - wins - losses}"
    if wins + losses:
        assert summary["win_rate_vs_previous"] == pytest.approx(wins / (wins + losses))
    else:
        assert math.isnan(summary["win_rate_vs_previous"])
    passed = [0 < len(r["answer"].split()) <= 3 for r in this]
    assert [r["check_pass"] for r in this] == [float(x) for x in passed]
    assert summary["heldout_check_pass_this"] == pytest.approx(sum(passed) / len(passed))


def test_lineage_pooling_from_round_three_and_status(round_one, rlhf_files, capsys):
    from chatalign.rlhf.cli_commands import cmd_status

    r1, _ = round_one
    r2, r3 = r1.parent / "round2", r1.parent / "round3"
    fast = {"data": {"heldout": None}, "rs": {"sweep_temperatures": []}}  # no evaluation, no sweep: lineage only
    s2 = run_round(round_cfg(rlhf_files, r2, r1, "rs", **fast), progress=False, reward_fn=by_text)
    s3 = run_round(round_cfg(rlhf_files, r3, r2, "rs", **fast), progress=False, reward_fn=by_text)
    m3 = json.loads((r3 / "manifest.json").read_text())
    assert (s2["round"], s3["round"]) == (2, 3)
    assert s2["rs_pooled_from_rounds"] == [] and s3["rs_pooled_from_rounds"] == [1, 2]
    assert m3["rlhf"]["lineage"] == [str(r2.resolve()), str(r1.resolve()), str((rlhf_files / "policy").resolve())]
    assert m3["rlhf"]["sft_run"] == str((rlhf_files / "policy").resolve())
    # round 3 keeps, per prompt, the best of its own samples and of rounds 1-2's selections, all scored by
    # this round's reward function
    candidates = {}
    for s in rows(r3 / "data" / "samples.jsonl"):
        candidates.setdefault(s["prompt_key"], []).append(s["answer"])
    for r in (r1, r2):
        for s in rows(r / "data" / "selected.jsonl"):
            candidates.setdefault(s["prompt_key"], []).append(s["answer"])
    selected = {s["prompt_key"]: s for s in rows(r3 / "data" / "selected.jsonl")}
    assert set(selected) == set(candidates)
    for key, answers in candidates.items():
        best = max(float(by_text(None, [a], None).combined[0]) for a in answers)
        assert selected[key]["r_combined"] == pytest.approx(best)
    train = rows(r3 / "data" / "rs_train.jsonl")
    assert len(train) == len(selected) and train[0]["messages"][-1]["role"] == "assistant"

    assert cmd_status(str(r1.parent)) == 0
    out = capsys.readouterr().out
    assert out.index("round 1 [rs+ppo] finished") < out.index("round 2 [rs] finished") < out.index("round 3 [rs]")
    assert "held-out R_c" in out and "start: model" in out
