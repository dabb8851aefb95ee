"""A killed PPO run resumes from its last checkpoint and computes the same next iterations as an unbroken run."""

import copy

import pytest
import torch

from chatalign.errors import RunError
from chatalign.rlhf.config import PPOSection
from chatalign.rlhf.ppo.models import assemble
from chatalign.rlhf.ppo.trainer import PPOTrainer
from chatalign.runs import RunDir

from ..conftest import peaky_llama, prompt_dicts, token_fraction_reward

TOKEN = 198  # "\n": sampled often by peaky_llama


class Killed(Exception):
    pass


def make_trainer(tok, root, checkpoint_every=1, iterations=3, on_iteration=None, reward_fn=None):
    from ...conftest import reward_model_from_causal_lm

    lm = peaky_llama(tok)
    models = assemble(lm, tok, reward_model_from_causal_lm(lm, seed=1), None, reference=copy.deepcopy(lm))
    cfg = PPOSection.model_validate({
        "iterations": iterations, "batch_prompts": 8, "minibatch": 4, "micro_batch": 2, "max_new_tokens": 8,
        "gen_batch_size": 8, "score_batch_size": 4, "beta": 0.05, "reward_transform": "raw",
        "optim": {"lr": 1e-2, "value_lr": 3e-3}, "early_stopping": {"eval_every": 2, "patience": 5},
        "checkpoint_every": checkpoint_every, "keep_checkpoints": 2, "guards": {"max_kl": 1000}})
    return PPOTrainer(models, prompt_dicts(12), reward_fn or token_fraction_reward(TOKEN), cfg,
                      RunDir(root, "rlhf"), root / "ppo", heldout=prompt_dicts(3), on_iteration=on_iteration)


def numbers(record):
    return {k: v for k, v in record.items() if isinstance(v, float) and not k.startswith(("time_", "cpu_"))}


def assert_same_state(a: PPOTrainer, b: PPOTrainer):
    for m_a, m_b in ((a.models.policy, b.models.policy), (a.models.value, b.models.value)):
        for (n, p), (_, q) in zip(m_a.named_parameters(), m_b.named_parameters()):
            assert torch.allclose(p, q, atol=1e-6), n


def test_resume_after_a_kill_between_iterations_equals_an_unbroken_run(smol_tokenizer, tmp_path):
    full = make_trainer(smol_tokenizer, tmp_path / "a")
    full.train()
    ref = {r["step"]: r for r in full.run.read_metrics()}

    def kill_after_two(done, record):
        if done == 2:
            raise Killed

    with pytest.raises(Killed):
        make_trainer(smol_tokenizer, tmp_path / "b", on_iteration=kill_after_two).train()
    with pytest.raises(RunError, match="--resume"):  # never silently restarts over a run's checkpoints
        make_trainer(smol_tokenizer, tmp_path / "b").train(resume=False)
    resumed = make_trainer(smol_tokenizer, tmp_path / "b")
    summary = resumed.train(resume=True)
    got = {r["step"]: r for r in resumed.run.read_metrics()}
    assert sorted(got) == [0, 1, 2, 3]
    assert numbers(got[3]) == pytest.approx(numbers(ref[3]), rel=1e-5, abs=1e-6)
    assert numbers(got[2]) == pytest.approx(numbers(ref[2]), rel=1e-5, abs=1e-6)  # eval state carried over
    assert_same_state(full, resumed)
    assert summary["ppo_iterations"] == 3 and summary["ppo_best_iteration"] == full.early.best_iteration


def test_resume_after_a_kill_inside_an_iteration_redoes_it_from_the_checkpoint(smol_tokenizer, tmp_path):
    full = make_trainer(smol_tokenizer, tmp_path / "a", checkpoint_every=2, iterations=4)
    full.train()
    ref = {r["step"]: r for r in full.run.read_metrics()}

    state = {"armed": False}
    base = token_fraction_reward(TOKEN)

    def reward(prompts, texts, ids):
        if state["armed"] and len(prompts) == 8:
            raise Killed  # dies while scoring iteration 4, after logging iteration 3 (no checkpoint at 3)
        return base(prompts, texts, ids)

    def arm(done, record):
        state["armed"] = done == 3

    with pytest.raises(Killed):
        make_trainer(smol_tokenizer, tmp_path / "b", checkpoint_every=2, iterations=4, on_iteration=arm,
                     reward_fn=reward).train()
    assert [r["step"] for r in RunDir(tmp_path / "b", "rlhf").read_metrics()] == [0, 1, 2, 3]
    resumed = make_trainer(smol_tokenizer, tmp_path / "b", checkpoint_every=2, iterations=4)
    resumed.train(resume=True)
    got = {r["step"]: r for r in resumed.run.read_metrics()}
    assert sorted(got) == [0, 1, 2, 3, 4]  # iteration 3's old line was dropped and redone, not duplicated
    for step in (3, 4):
        assert numbers(got[step]) == pytest.approx(numbers(ref[step]), rel=1e-5, abs=1e-6)
    assert_same_state(full, resumed)


def test_sigterm_finishes_the_iteration_saves_it_and_stops(smol_tokenizer, tmp_path):
    import os
    import signal

    from chatalign.training.loop import Interrupted

    def term_during_one(done, record):
        if done == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives after iteration 1, before iteration 2 starts

    t = make_trainer(smol_tokenizer, tmp_path, checkpoint_every=10, iterations=4, on_iteration=term_during_one)
    with pytest.raises(Interrupted, match="--resume") as err:
        t.train()
    assert err.value.exit_code == 130
    # no checkpoint was due before 10: the interrupted run saved its last completed iteration and started no other
    assert [p.name for p in sorted((tmp_path / "ppo" / "checkpoints").iterdir())] == ["step-0000001"]
    resumed = make_trainer(smol_tokenizer, tmp_path, checkpoint_every=10, iterations=4)
    assert resumed.train(resume=True)["ppo_iterations"] == 4
