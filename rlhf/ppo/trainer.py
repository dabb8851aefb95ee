"""PPO with the two reward models (Llama 2 sec. 3.2.3): the iteration loop, early stopping, guards, resume.

One iteration: draw `batch_prompts` training prompts, sample one answer each from the policy (the rollout
engine returns log pi_old per token), score the answers (R_c), compute the reference log-probs and the old
values, turn R~c and the per-token KL penalty into per-token rewards, GAE, then one pass of shuffled
minibatches with one gradient step each on the clipped policy loss and the clipped value loss.

Reproducibility: every random choice of iteration i (its prompts, its sampling, its minibatch order) comes
from seeds derived from (ppo.seed, i), and dropout is off, so an iteration depends only on the weights and
optimizer states at its start. Those are checkpointed atomically after each iteration (every
`checkpoint_every`), which is why a killed run resumes from the last completed iteration and produces the
same next iteration as an unbroken run.

Under several ranks (or `ppo.deepspeed.enabled`) policy and value train in DeepSpeed engines and each rank
samples its share of the batch: see `ppo_dist`. One process with DeepSpeed off is plain torch, as before.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from chatalign.errors import RunError
from chatalign.rlhf.config import PPOSection
from chatalign.rlhf.ppo.batch import (
    RolloutBatch,
    build_batch,
    derived_seed,
    iteration_prompt_indices,
    pad_ragged,
)
from chatalign.rlhf.ppo.clock import PhaseClock
from chatalign.rlhf.ppo.evaluation import SALT_EVAL, EvalMixin  # noqa: F401 (re-exported)
from chatalign.rlhf.ppo.models import PPOModels
from chatalign.rlhf.reward_fn import RewardFn
from chatalign.runs import RunDir

log = logging.getLogger(__name__)

SALT_GENERATE, SALT_MINIBATCH = 1, 2  # SALT_EVAL = 3 lives in ppo_eval


class PPOTrainer(EvalMixin):
    """Runs PPO iterations for one round into `work_dir` (checkpoints, best policy) and `run` (metrics)."""

    def __init__(self, models: PPOModels, prompts: Sequence, reward_fn: RewardFn, cfg: PPOSection, run: RunDir,
                 work_dir: Path, heldout: Sequence | None = None, progress: bool = False,
                 on_iteration: Callable[[int, dict], None] | None = None, dist=None):
        from chatalign.rlhf.ppo.forward import PolicyForward, ValueForward
        from chatalign.rlhf.ppo.models import build_optimizers
        from chatalign.text.masks import encode_prompt
        from chatalign.training.distributed import DistContext

        if not prompts:
            raise RunError("PPO needs at least one training prompt")
        self.models, self.cfg, self.run, self.reward_fn = models, cfg, run, reward_fn
        self.work = Path(work_dir)
        self.prompts = list(prompts)
        self.heldout = list(heldout or [])
        self.progress = progress
        self.on_iteration = on_iteration
        tok = models.tokenizer
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
        self.prompt_ids = [encode_prompt(tok, _messages(p)) for p in self.prompts]
        self.heldout_ids = [encode_prompt(tok, _messages(p)) for p in self.heldout]
        self.policy_fwd = PolicyForward(models.policy)
        self.value_fwd = ValueForward(models.value)
        o = cfg.optim
        self.policy_opt, self.value_opt = build_optimizers(models, o.lr, o.value_lr, o.betas, o.eps, o.weight_decay)
        self.micro = cfg.micro_batch or cfg.minibatch
        self.dist = dist or DistContext()
        from chatalign.rlhf.ppo.frozen import place_frozen

        place_frozen(self)  # sets self.reference, and self.reward_fn partitioned under `frozen_models: zero3`
        self.engines = None
        if self.dist.use_deepspeed(cfg.deepspeed):
            from chatalign.rlhf.ppo.dist import build_engines

            self.engines = build_engines(self.dist, self.policy_fwd, self.value_fwd, self.policy_opt, self.value_opt,
                                         cfg.deepspeed, o.grad_clip, self.micro, models.uses_lora)
        # early-stopping state (checkpointed)
        self.best_reward: float | None = None
        self.best_iteration: int | None = None
        self.bad_evals = 0
        self.evals: list[dict] = []
        self.stop_reason: str | None = None

    # ------------------------------------------------------------------ layout
    @property
    def checkpoints(self) -> Path:
        return self.work / "checkpoints"

    @property
    def best_dir(self) -> Path:
        return self.work / "best"

    # ------------------------------------------------------------------ one iteration
    def collect(self, iteration: int) -> tuple[RolloutBatch, dict, dict]:
        """Sample, score and prepare the targets of iteration `iteration` (0-based); nothing is trained."""
        from chatalign.rlhf.ppo.forward import batched_values
        from chatalign.rlhf.ppo.math import gae, kl_per_token, masked_mean, masked_whiten, token_rewards

        cfg = self.cfg
        clock = PhaseClock()
        chosen = iteration_prompt_indices(len(self.prompts), cfg.batch_prompts, iteration, cfg.seed)
        seed = derived_seed(cfg.seed, iteration, SALT_GENERATE)
        if self.engines is not None:
            from chatalign.rlhf.ppo.dist import collect_shared

            rollouts, rewards, batch, old_logprobs, ref_logprobs, old_values = collect_shared(
                self, chosen, seed, clock)
        else:
            rollouts = self.generate([self.prompt_ids[i] for i in chosen], seed)
            clock.lap("generation")
            prompts = [self.prompts[i] for i in chosen]
            rewards = self.reward_fn(prompts, [r.text for r in rollouts], [r.response_ids for r in rollouts])
            clock.lap("scoring")

            batch = build_batch([r.prompt_ids for r in rollouts], [r.response_ids for r in rollouts], self.pad_id)
            width = batch.mask.shape[1]
            old_logprobs = pad_ragged([r.logprobs for r in rollouts], width) * batch.mask
            clock.lap(None)
            ref_logprobs = self.reference.logprobs(batch, cfg.score_batch_size)
            clock.lap("reference")
            old_values = batched_values(self.value_fwd, batch, cfg.score_batch_size)
            clock.lap("values")

        r_c = rewards.combined.float()
        score = self.transform_reward(r_c)
        kl = kl_per_token(old_logprobs, ref_logprobs, cfg.kl_estimator) * batch.mask
        per_token = token_rewards(score, kl, cfg.beta, batch.mask)
        advantages, returns = gae(per_token, old_values, batch.mask, cfg.gamma, cfg.lam)
        if cfg.whiten_advantages:
            advantages = masked_whiten(advantages, batch.mask)
        from chatalign.rlhf.ppo.update import Targets

        targets = Targets(old_logprobs=old_logprobs, old_values=old_values, advantages=advantages, returns=returns)
        seq_kl = ((old_logprobs - ref_logprobs) * batch.mask).sum(-1)  # k1 per answer: log pi/pi_ref of the sample
        lengths = batch.mask.sum(-1)
        record = {
            "reward": float(r_c.mean()),
            "reward_helpful": _mean_or_none(rewards.helpful),
            "reward_safety": _mean_or_none(rewards.safety),
            "score_transformed_std": float(score.std()) if len(score) > 1 else 0.0,
            "abs_logit_reward": float(_logit(r_c).abs().mean()) if cfg.reward_transform != "raw" else None,
            "kl": float(seq_kl.mean()),
            "kl_per_token": float(masked_mean(old_logprobs - ref_logprobs, batch.mask)),
            "kl_penalty": float((cfg.beta * kl).sum(-1).mean()),
            "response_length": float(lengths.mean()),
            "finished_fraction": sum(r.finished for r in rollouts) / len(rollouts),
            "value_mean": float(masked_mean(old_values, batch.mask)),
            "return_mean": float(masked_mean(returns, batch.mask)),
        }
        return batch, {"targets": targets, "rollouts": rollouts}, {"record": record, "clock": clock}

    def generate(self, prompt_ids: list[list[int]], seed: int) -> list:
        """One sampled answer per prompt from the current policy, with log pi_old per token."""
        from chatalign.rollout.engine import generate_rollouts

        cfg = self.cfg
        return generate_rollouts(
            self.models.policy, self.models.tokenizer, prompt_ids, num_samples=1, max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature, top_p=cfg.top_p, batch_size=cfg.gen_batch_size, seed=seed,
            return_logprobs=True)

    def transform_reward(self, r_c: torch.Tensor) -> torch.Tensor:
        """R~c per answer: whiten(logit(R_c)) (paper), logit(R_c), or R_c as is."""
        from chatalign.rlhf.reward_mix import logit, whiten

        kind = self.cfg.reward_transform
        if kind == "raw":
            return r_c
        x = logit(r_c)
        return whiten(x) if kind == "whiten_logit" and len(x) > 1 else x

    def check_guards(self, iteration: int, record: dict) -> None:
        g = self.cfg.guards
        problems = []
        if not math.isfinite(record["reward"]) or not math.isfinite(record["kl"]):
            problems.append(f"non-finite reward ({record['reward']}) or KL ({record['kl']})")
        if g.max_kl is not None and record["kl"] > g.max_kl:
            problems.append(f"mean KL to the reference {record['kl']:.3g} nats per answer exceeds "
                            f"ppo.guards.max_kl={g.max_kl} (the policy ran away from the reference: lower "
                            "ppo.optim.lr or raise ppo.beta)")
        abs_r = record.get("abs_logit_reward")
        if g.max_abs_reward is not None and abs_r is not None and abs_r > g.max_abs_reward:
            problems.append(f"mean |logit R_c| {abs_r:.3g} exceeds ppo.guards.max_abs_reward={g.max_abs_reward} "
                            "(reward hacking or a saturated reward model: inspect the samples)")
        if problems:
            raise RunError(f"PPO stopped at iteration {iteration + 1}: " + "; ".join(problems) +
                           f". Checkpoints of completed iterations are in {self.checkpoints}")

    def update(self, iteration: int, batch: RolloutBatch, targets) -> dict:
        from chatalign.rlhf.ppo.update import ppo_update

        g = torch.Generator().manual_seed(derived_seed(self.cfg.seed, iteration, SALT_MINIBATCH))
        if self.engines is not None:
            from chatalign.rlhf.ppo.update_ds import ppo_update_ds

            return ppo_update_ds(self.engines, self.dist, batch, targets, minibatch=self.cfg.minibatch,
                                 micro_batch=self.micro, epochs=self.cfg.epochs, clip=self.cfg.clip,
                                 value_clip=self.cfg.value_clip, generator=g)
        return ppo_update(self.policy_fwd, self.value_fwd, self.policy_opt, self.value_opt, batch, targets,
                          minibatch=self.cfg.minibatch, micro_batch=self.micro, epochs=self.cfg.epochs,
                          clip=self.cfg.clip, value_clip=self.cfg.value_clip, grad_clip=self.cfg.optim.grad_clip,
                          generator=g)

    def iteration(self, iteration: int) -> dict:
        t0 = time.perf_counter()
        batch, parts, info = self.collect(iteration)
        record = {"step": iteration + 1, **info["record"]}
        self.check_guards(iteration, record)
        clock = info["clock"]
        clock.lap(None)
        record.update(self.update(iteration, batch, parts["targets"]))
        clock.lap("training")
        record.update(clock.record())
        record["time_iteration_s"] = round(time.perf_counter() - t0, 3)
        return record

    # ------------------------------------------------------------------ state
    def loop_state(self) -> dict:
        return {"best_reward": self.best_reward, "best_iteration": self.best_iteration, "bad_evals": self.bad_evals,
                "evals": self.evals, "stop_reason": self.stop_reason}

    def restore(self) -> int:
        """Load the latest checkpoint; return the number of completed iterations (0 when there is none)."""
        from chatalign.rlhf.ppo.checkpoint import latest_checkpoint, load_ppo_checkpoint

        ck = latest_checkpoint(self.checkpoints)
        if ck is None:
            return 0
        if self.engines is not None:
            from chatalign.rlhf.ppo.checkpoint_ds import load_ppo_checkpoint_ds

            state = load_ppo_checkpoint_ds(ck, self.engines)
        else:
            state = load_ppo_checkpoint(ck, self.models.policy, self.models.value, self.policy_opt, self.value_opt)
        self.best_reward, self.best_iteration = state.get("best_reward"), state.get("best_iteration")
        self.bad_evals, self.evals = state.get("bad_evals", 0), state.get("evals", [])
        self.stop_reason = state.get("stop_reason")
        log.info("PPO resumed from %s (iteration %d done)", ck.name, state["iteration"])
        return int(state["iteration"])

    def save(self, done: int) -> None:
        from chatalign.rlhf.ppo.checkpoint import prune_checkpoints, save_ppo_checkpoint

        if self.engines is not None:
            from chatalign.rlhf.ppo.checkpoint_ds import save_ppo_checkpoint_ds

            save_ppo_checkpoint_ds(self.checkpoints, done, self.engines, self.dist, self.loop_state())
        else:
            save_ppo_checkpoint(self.checkpoints, done, self.models.policy, self.models.value, self.policy_opt,
                                self.value_opt, self.loop_state())
        if self.dist.is_main:
            prune_checkpoints(self.checkpoints, self.cfg.keep_checkpoints)
        self.dist.barrier()

    # ------------------------------------------------------------------ the loop
    def train(self, resume: bool = False) -> dict:
        from chatalign.rlhf.ppo.checkpoint import latest_checkpoint

        cfg = self.cfg
        if not resume and latest_checkpoint(self.checkpoints) is not None:
            raise RunError(f"{self.checkpoints} holds PPO checkpoints of an unfinished run: add --resume to "
                           "continue it, or choose another output_dir")
        start = self.restore() if resume else 0
        if self.dist.is_main:
            self.run.truncate_metrics(start if start else -1)
        use_eval = bool(self.heldout)
        if use_eval and start == 0:
            ev = self.evaluate(0)
            self._after_eval(0, ev)
            if self.dist.is_main:
                self.run.log_metrics({"step": 0, **ev})
        bar = None
        if self.progress and self.dist.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.iterations, initial=start, desc="ppo", dynamic_ncols=True)
        from chatalign.training.signals import Interrupted, StopFlag

        try:
            with StopFlag() as stop:
                done, last = self._loop(start, use_eval, bar, stop)
        finally:
            if bar is not None:
                bar.close()
        if stop.signum is not None:
            raise Interrupted(f"interrupted by signal at PPO iteration {done}/{cfg.iterations}; checkpoint saved "
                              f"in {self.checkpoints}; continue with --resume")
        return self.summary(done, last)

    def _loop(self, start: int, use_eval: bool, bar, stop) -> tuple[int, dict]:
        """Iterations start+1..; returns (completed iterations, last record). A SIGTERM/SIGINT (`stop`) lets
        the running iteration finish and be checkpointed before the loop ends."""
        cfg = self.cfg
        last: dict = {}
        done = saved = start
        for it in range(start, cfg.iterations):
            if self.stop_reason or stop.signum is not None:
                break
            record = self.iteration(it)
            done = it + 1
            if use_eval and (done % cfg.early_stopping.eval_every == 0 or done == cfg.iterations):
                t = time.perf_counter()
                ev = self.evaluate(done)
                self._after_eval(done, ev)
                record.update(ev)
                record["time_eval_s"] = round(time.perf_counter() - t, 3)
            if self.dist.is_main:
                self.run.log_metrics(record)
            last = record
            interrupted = self.dist.any_flag(stop.signum is not None)  # every rank saves, and stops, together
            if done % cfg.checkpoint_every == 0 or done == cfg.iterations or self.stop_reason or interrupted:
                self.save(done)
                saved = done
            if bar is not None:
                bar.set_postfix(reward=f"{record['reward']:.3f}", kl=f"{record['kl']:.3f}")
                bar.update(1)
            if self.on_iteration is not None:
                self.on_iteration(done, record)
            if interrupted:
                break
        if stop.signum is not None and saved != done:
            self.save(done)  # the signal came between iterations
        return done, last

    def summary(self, done: int, last: dict) -> dict:
        if not last:  # resumed after the last iteration: take it from the log
            logged = [r for r in self.run.read_metrics() if "reward" in r]
            last = logged[-1] if logged else {}
        first_eval = self.evals[0]["heldout_reward"] if self.evals else None
        out = {"ppo_iterations": done, "ppo_stop_reason": self.stop_reason or "iterations done",
               "ppo_last_reward": last.get("reward"), "ppo_last_kl": last.get("kl"),
               "ppo_heldout_reward_start": first_eval, "ppo_heldout_reward_best": self.best_reward,
               "ppo_best_iteration": self.best_iteration}
        return out


def _messages(prompt) -> list[dict]:
    from chatalign.rlhf.reward_fn import prompt_messages

    return prompt_messages(prompt)


def _mean_or_none(x) -> float | None:
    return None if x is None else float(torch.as_tensor(x).float().mean())


def _logit(p: torch.Tensor) -> torch.Tensor:
    from chatalign.rlhf.reward_mix import logit

    return logit(p)
