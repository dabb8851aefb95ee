"""PPO with the two reward models (Llama 2 sec. 3.2.3): the iteration loop over composed components.

`PPOTrainer` wires: where the frozen networks live (`frozen.place_frozen`), the policy and value backends
(plain torch or DeepSpeed engines, `backends`), the KL controller (`kl_control`), the experience maker
(sample, score, targets: `experience`), the update (`update`), the held-out evaluator and early stopping
(`evaluation`), and the checkpoints (`checkpoint`). One iteration: make the Experience, check the guards, run
the update; then evaluate and checkpoint when due.

Reproducibility: every random choice of iteration i (its prompts, its sampling, its minibatch order) comes
from seeds derived from (ppo.seed, i), and dropout is off, so an iteration depends only on the weights and
optimizer states at its start. Those are checkpointed atomically after each iteration (every
`checkpoint_every`), which is why a killed run resumes from the last completed iteration and produces the
same next iteration as an unbroken run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from chatalign.errors import RunError
from chatalign.rlhf.config import PPOSection
from chatalign.rlhf.ppo.batch import derived_seed
from chatalign.rlhf.ppo.clock import PhaseClock
from chatalign.rlhf.ppo.models import PPOModels
from chatalign.rlhf.reward_fn import RewardFn
from chatalign.runs import RunDir

log = logging.getLogger(__name__)

SALT_MINIBATCH = 2  # SALT_GENERATE = 1 (experience), SALT_EVAL = 3 (evaluation)


class PPOTrainer:
    """Runs PPO iterations for one round into `work_dir` (checkpoints, best policy) and `run` (metrics).
    `sampler`: where answers come from (default: the policy through `generator`, by default the native engine)."""

    def __init__(self, models: PPOModels, prompts: Sequence, reward_fn: RewardFn, cfg: PPOSection, run: RunDir,
                 work_dir: Path, heldout: Sequence | None = None, progress: bool = False,
                 on_iteration: Callable[[int, dict], None] | None = None, dist=None, sampler=None,
                 generator=None):
        from chatalign.rlhf.ppo.backends import ppo_backends
        from chatalign.rlhf.ppo.checkpoint import PPOCheckpoints
        from chatalign.rlhf.ppo.evaluation import EarlyStopping, HeldoutEvaluator
        from chatalign.rlhf.ppo.experience import ExperienceMaker
        from chatalign.rlhf.ppo.frozen import place_frozen
        from chatalign.rlhf.ppo.kl_control import FixedKL
        from chatalign.rlhf.ppo.sampler import evaluation_sampler, training_sampler
        from chatalign.rlhf.ppo.update import PPOUpdate
        from chatalign.training.distributed import DistContext

        if not prompts:
            raise RunError("PPO needs at least one training prompt")
        self.models, self.cfg, self.run, self.work = models, cfg, run, Path(work_dir)
        self.progress, self.on_iteration = progress, on_iteration
        self.dist = dist or DistContext()
        tok = models.tokenizer
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
        self.frozen = place_frozen(models, reward_fn, cfg, self.dist)
        self.policy, self.value = ppo_backends(models, cfg, self.dist)
        self.kl_control = FixedKL(cfg.beta)
        self.experience = ExperienceMaker(list(prompts), _encode(tok, prompts),
                                          sampler or training_sampler(models, cfg, generator), self.frozen,
                                          self.policy, self.value, self.kl_control, cfg, self.dist, pad_id)
        self.update = PPOUpdate(self.policy, self.value, self.dist, minibatch=cfg.minibatch,
                                micro_batch=cfg.micro_batch or cfg.minibatch, epochs=cfg.epochs, clip=cfg.clip,
                                value_clip=cfg.value_clip)
        self.evaluator = HeldoutEvaluator(list(heldout), _encode(tok, heldout),
                                          evaluation_sampler(models, cfg, generator), self.frozen, self.policy, cfg,
                                          self.dist) if heldout else None
        self.early = EarlyStopping(cfg.early_stopping)
        self.checkpoints = PPOCheckpoints(self.work, self.policy, self.value, self.dist, cfg.keep_checkpoints)

    # ------------------------------------------------------------------ one iteration
    def iteration(self, iteration: int) -> dict:
        """Make iteration `iteration`'s (0-based) experience, check the guards, train on it; its record."""
        from chatalign.rlhf.ppo.guards import check_guards

        t0 = time.perf_counter()
        clock = PhaseClock()
        exp = self.collect(iteration, clock)
        record = {"step": iteration + 1, **exp.stats}
        check_guards(self.cfg.guards, iteration, record, self.checkpoints.root)
        clock.lap(None)
        g = torch.Generator().manual_seed(derived_seed(self.cfg.seed, iteration, SALT_MINIBATCH))
        warmup = iteration < self.cfg.value.warmup_iterations  # the value model learns the returns first
        record.update(self.update(exp, g, train_policy=not warmup))
        if warmup:
            record["value_warmup"] = True
        clock.lap("training")
        self.kl_control.update(record["kl"], len(exp.batch))
        record.update(clock.record())
        record["time_iteration_s"] = round(time.perf_counter() - t0, 3)
        return record

    def collect(self, iteration: int, clock: PhaseClock):
        """Iteration `iteration`'s Experience (sampled, scored, targets); nothing is trained."""
        return self.experience.make(iteration, clock)

    # ------------------------------------------------------------------ state
    def loop_state(self) -> dict:
        return {**self.early.state(), "kl_control": self.kl_control.state()}

    def restore(self) -> int:
        """Load the latest checkpoint; return the number of completed iterations (0 when there is none)."""
        ck = self.checkpoints.latest()
        if ck is None:
            return 0
        state = self.checkpoints.load(ck)
        self.early.load_state(state)
        self.kl_control.load_state(state.get("kl_control", {}))
        log.info("PPO resumed from %s (iteration %d done)", ck.name, state["iteration"])
        return int(state["iteration"])

    def evaluate(self, iteration: int) -> dict:
        """Held-out evaluation after `iteration` iterations; the best policy so far is saved."""
        ev = self.evaluator()
        if self.early.observe(iteration, ev):
            self.checkpoints.save_best({"iteration": iteration, "heldout_reward": ev["heldout_reward"]})
        return ev

    # ------------------------------------------------------------------ the loop
    def train(self, resume: bool = False) -> dict:
        from chatalign.rlhf.ppo.loop import run_iterations

        if not resume and self.checkpoints.latest() is not None:
            raise RunError(f"{self.checkpoints.root} holds PPO checkpoints of an unfinished run: add --resume to "
                           "continue it, or choose another output_dir")
        return run_iterations(self, self.restore() if resume else 0)

    def restore_best(self) -> int | None:
        """Load the best evaluated policy weights (when early stopping asks for it); return its iteration."""
        meta = self.checkpoints.best_meta() if self.cfg.early_stopping.restore_best else None
        if meta is None:
            return None
        if meta.get("iteration") != self.early.best_iteration:
            # best/ was written by a killed attempt after its last checkpoint and not rewritten on resume
            log.warning("PPO: %s holds iteration %s, not the best iteration %s: keeping the final policy",
                        self.checkpoints.best_dir, meta.get("iteration"), self.early.best_iteration)
            return None
        self.checkpoints.load_best()
        return self.early.best_iteration

    def close(self) -> None:
        """Tear down every DeepSpeed engine PPO made (policy, value, partitioned frozen models), on every rank
        at this same point."""
        self.policy.close()
        self.value.close()
        self.frozen.close()

    def export(self, target: Path) -> None:
        """The policy as a whole HF causal LM in `target` (written by rank 0)."""
        from chatalign.rlhf.ppo.checkpoint import export_policy

        export_policy(self.models, self.policy, target, self.dist)


def _encode(tokenizer, prompts) -> list[list[int]]:
    from chatalign.rlhf.reward_fn import prompt_messages
    from chatalign.text.masks import encode_prompt

    return [encode_prompt(tokenizer, prompt_messages(p)) for p in prompts or []]
