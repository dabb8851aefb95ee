"""PPO's held-out evaluation and early stopping on it (Llama 2 sec. 3.2.3 trains 200-400 iterations and keeps
the best policy by held-out reward).

`HeldoutEvaluator` answers the held-out prompts with the current policy (greedy, or K seeded samples each,
the same seed at every evaluation so sampled evaluations compare policies on paired draws) and returns the
mean rewards; under several ranks each rank answers its share under the gathered policy. `EarlyStopping`
keeps the best evaluated reward and stops after `patience` evaluations without improvement; its state goes
into every checkpoint."""

from __future__ import annotations

from chatalign.rlhf.ppo.batch import derived_seed
from chatalign.rlhf.ppo.shares import mean_or_none, rows_rewards, score_share
from chatalign.training.distributed import gather_rows, share

SALT_EVAL = 3


class HeldoutEvaluator:
    """Mean combined reward (and R_h, R_s, answer length) of the policy's answers to the held-out prompts."""

    def __init__(self, prompts: list, prompt_ids: list[list[int]], sampler, frozen, policy, cfg, dist):
        k = cfg.early_stopping.samples_per_prompt
        # K samples of a prompt are K copies of it in one seeded generation: the draws differ, and stay the same
        # from one evaluation to the next
        self.prompts = [p for p in prompts for _ in range(k)]
        self.prompt_ids = [ids for ids in prompt_ids for _ in range(k)]
        self.sampler, self.frozen, self.policy, self.dist = sampler, frozen, policy, dist
        self.seed = derived_seed(cfg.seed, 0, SALT_EVAL)

    def __call__(self) -> dict:
        idx = share(list(range(len(self.prompts))), self.dist)
        with self.policy.gathered():
            every = idx or getattr(self.sampler, "collective", False)  # an engine per rank: every rank calls
            rollouts = self.sampler([self.prompt_ids[i] for i in idx], self.seed) if every else []
        rewards = score_share(self.frozen, [self.prompts[i] for i in idx], rollouts)
        rows = [{**x, "length": len(r.response_ids)} for x, r in zip(rewards.rows(), rollouts)] if idx else []
        rows = gather_rows(self.dist, rows, len(self.prompts))
        merged = rows_rewards(rows)
        return {"heldout_reward": float(merged.combined.float().mean()),
                "heldout_reward_helpful": mean_or_none(merged.helpful),
                "heldout_reward_safety": mean_or_none(merged.safety),
                "heldout_length": sum(r["length"] for r in rows) / len(rows)}


class EarlyStopping:
    """The best held-out reward so far, and the stop once `patience` evaluations in a row did not beat it by
    more than `min_delta`."""

    def __init__(self, es):
        self.es = es
        self.best_reward: float | None = None
        self.best_iteration: int | None = None
        self.bad_evals = 0
        self.evals: list[dict] = []
        self.stop_reason: str | None = None

    def observe(self, iteration: int, ev: dict) -> bool:
        """Record the evaluation after `iteration` iterations; True when it is the best so far."""
        value = ev["heldout_reward"]
        self.evals.append({"iteration": iteration, **ev})
        if self.best_reward is None or value > self.best_reward + self.es.min_delta:
            self.best_reward, self.best_iteration, self.bad_evals = value, iteration, 0
            return True
        self.bad_evals += 1
        if self.bad_evals >= self.es.patience:
            self.stop_reason = (f"early stopping: held-out reward has not improved on {self.best_reward:.4f} "
                                f"(iteration {self.best_iteration}) for {self.bad_evals} evaluations")
        return False

    def state(self) -> dict:
        return {"best_reward": self.best_reward, "best_iteration": self.best_iteration, "bad_evals": self.bad_evals,
                "evals": self.evals, "stop_reason": self.stop_reason}

    def load_state(self, state: dict) -> None:
        self.best_reward, self.best_iteration = state.get("best_reward"), state.get("best_iteration")
        self.bad_evals, self.evals = state.get("bad_evals", 0), state.get("evals", [])
        self.stop_reason = state.get("stop_reason")
