"""PPO's iteration loop: resume, the held-out evaluation at the start and every `eval_every` iterations, the
checkpoint after every `checkpoint_every` (and after the last, an early stop, or a signal), metrics, progress.
A SIGTERM/SIGINT lets the running iteration finish and be checkpointed, then the run ends resumable."""

from __future__ import annotations

import time

from chatalign.training.loop import progress_bar
from chatalign.training.signals import Interrupted, StopFlag


def run_iterations(trainer, start: int) -> dict:
    """Iterations start+1.. of `trainer` (a PPOTrainer restored to `start`); return the run's summary."""
    cfg, dist = trainer.cfg, trainer.dist
    if dist.is_main:
        trainer.run.truncate_metrics(start if start else -1)
    if trainer.evaluator is not None and start == 0:
        ev = trainer.evaluate(0)
        if dist.is_main:
            trainer.run.log_metrics({"step": 0, **ev})
    with progress_bar(trainer.progress and dist.is_main, cfg.iterations, start, "ppo") as bar, \
            StopFlag() as stop:
        done, last = _loop(trainer, start, bar, stop)
    if stop.signum is not None:
        raise Interrupted(f"interrupted by signal at PPO iteration {done}/{cfg.iterations}; checkpoint saved "
                          f"in {trainer.checkpoints.root}; continue with --resume")
    return summary(trainer, done, last)


def _loop(trainer, start: int, bar, stop) -> tuple[int, dict]:
    """(completed iterations, last record). Every rank saves, and stops, together."""
    cfg, dist, early = trainer.cfg, trainer.dist, trainer.early
    last: dict = {}
    done = saved = start
    for it in range(start, cfg.iterations):
        if early.stop_reason or stop.signum is not None:
            break
        record = trainer.iteration(it)
        done = it + 1
        if trainer.evaluator is not None and (done % cfg.early_stopping.eval_every == 0 or done == cfg.iterations):
            t = time.perf_counter()
            record.update(trainer.evaluate(done))
            record["time_eval_s"] = round(time.perf_counter() - t, 3)
        if dist.is_main:
            trainer.run.log_metrics(record)
        last = record
        interrupted = dist.any_flag(stop.signum is not None)
        if done % cfg.checkpoint_every == 0 or done == cfg.iterations or early.stop_reason or interrupted:
            trainer.checkpoints.save(done, trainer.loop_state())
            saved = done
        if bar is not None:
            bar.set_postfix(reward=f"{record['reward']:.3f}", kl=f"{record['kl']:.3f}")
            bar.update(1)
        if trainer.on_iteration is not None:
            trainer.on_iteration(done, record)
        if interrupted:
            break
    if stop.signum is not None and saved != done:
        trainer.checkpoints.save(done, trainer.loop_state())  # the signal came between iterations
    return done, last


def summary(trainer, done: int, last: dict) -> dict:
    early = trainer.early
    if not last:  # resumed after the last iteration: take it from the log
        logged = [r for r in trainer.run.read_metrics() if "reward" in r]
        last = logged[-1] if logged else {}
    return {"ppo_iterations": done, "ppo_stop_reason": early.stop_reason or "iterations done",
            "ppo_last_reward": last.get("reward"), "ppo_last_kl": last.get("kl"),
            "ppo_heldout_reward_start": early.evals[0]["heldout_reward"] if early.evals else None,
            "ppo_heldout_reward_best": early.best_reward, "ppo_best_iteration": early.best_iteration}
