"""Rejection sampling from another model (`rs.sampler`, as the paper's smaller models were fine-tuned on the
70B model's best answers): the K answers come from the sampler, the fine-tuning starts from the round's policy."""

import json

from chatalign.rlhf.round import run_round

from .conftest import by_text, round_cfg, rows

FAST = {"data": {"heldout": None}}


def samples_of(rlhf_files, out, sampler) -> list[str]:
    rs = {"sweep_temperatures": [], **({"sampler": str(sampler)} if sampler else {})}
    summary = run_round(round_cfg(rlhf_files, out, rlhf_files / "policy", "rs", rs=rs, **FAST), progress=False,
                        reward_fn=by_text)
    assert summary["rs_sampler"] == (str(sampler) if sampler else "policy")
    return [s["answer"] for s in rows(out / "data" / "samples.jsonl")]


def test_the_answers_come_from_the_sampler_and_the_policy_is_trained(rlhf_files, tiny_model_dir, tmp_path):
    own = samples_of(rlhf_files, tmp_path / "own", None)
    named = samples_of(rlhf_files, tmp_path / "named", rlhf_files / "policy")  # the policy named: same draws
    other = samples_of(rlhf_files, tmp_path / "other", tiny_model_dir)
    assert own == named and len(other) == len(own)
    assert sum(a != b for a, b in zip(own, other)) > len(own) // 2  # another model's answers
    manifest = json.loads((tmp_path / "other" / "manifest.json").read_text())
    assert manifest["rlhf"]["rs_sampler"] == str(tiny_model_dir.resolve()) and manifest["parents"][-1] == str(
        tiny_model_dir.resolve())
    sft = json.loads((tmp_path / "other" / "rs_sft" / "manifest.json").read_text())
    assert sft["config"]["model"]["name"] == str(rlhf_files / "policy")  # fine-tuned: the policy, not the sampler
    trained = {r["messages"][-1]["content"] for r in rows(tmp_path / "other" / "data" / "rs_train.jsonl")}
    assert trained and trained <= set(other)
