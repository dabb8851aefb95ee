"""PPO's held-out evaluation, early stopping on it, and the export of the round's policy (a mixin of
`PPOTrainer`: it reads the trainer's models, config, reward function, ranks and engines)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from chatalign.rlhf.ppo.batch import derived_seed

log = logging.getLogger(__name__)

SALT_EVAL = 3


class EvalMixin:
    # ------------------------------------------------------------------ held-out evaluation
    def evaluate(self, iteration: int) -> dict:
        """Mean combined reward of the policy's answers to the held-out prompts (greedy, or K seeded samples each)."""
        from chatalign.rollout.engine import generate_rollouts

        es = self.cfg.early_stopping

        def generate(ids):
            return generate_rollouts(
                self.models.policy, self.models.tokenizer, ids, num_samples=1,
                max_new_tokens=es.max_new_tokens or self.cfg.max_new_tokens, temperature=es.temperature,
                # the same seed at every evaluation: sampled evaluations then compare policies on paired draws
                batch_size=self.cfg.gen_batch_size, seed=derived_seed(self.cfg.seed, 0, SALT_EVAL),
                return_logprobs=False)

        k = es.samples_per_prompt
        # K samples of a prompt are K copies of it in one seeded generation: the draws differ, and stay the same
        # from one evaluation to the next
        prompt_ids = [ids for ids in self.heldout_ids for _ in range(k)]
        prompts = [p for p in self.heldout for _ in range(k)]
        if self.engines is not None:
            from chatalign.rlhf.ppo.dist import evaluate_shared

            rows = evaluate_shared(self, prompt_ids, prompts, generate)
            return {"heldout_reward": sum(r["r_combined"] for r in rows) / len(rows),
                    "heldout_reward_helpful": _row_mean(rows, "r_helpful"),
                    "heldout_reward_safety": _row_mean(rows, "r_safety"),
                    "heldout_length": sum(r["length"] for r in rows) / len(rows)}
        rollouts = generate(prompt_ids)
        rewards = self.reward_fn(prompts, [r.text for r in rollouts], [r.response_ids for r in rollouts])
        return {"heldout_reward": float(rewards.combined.float().mean()),
                "heldout_reward_helpful": _mean_or_none(rewards.helpful),
                "heldout_reward_safety": _mean_or_none(rewards.safety),
                "heldout_length": sum(len(r.response_ids) for r in rollouts) / len(rollouts)}

    def _after_eval(self, iteration: int, ev: dict) -> None:
        from chatalign.rlhf.ppo.checkpoint import save_weights_atomic

        es = self.cfg.early_stopping
        value = ev["heldout_reward"]
        self.evals.append({"iteration": iteration, **ev})
        if self.best_reward is None or value > self.best_reward + es.min_delta:
            self.best_reward, self.best_iteration, self.bad_evals = value, iteration, 0
            meta = {"iteration": iteration, "heldout_reward": value}
            if self.engines is not None:
                from chatalign.rlhf.ppo.checkpoint_ds import save_best_ds

                save_best_ds(self.models.policy, self.best_dir, meta, self.dist)
            else:
                save_weights_atomic(self.models.policy, self.best_dir, meta)
        else:
            self.bad_evals += 1
            if self.bad_evals >= es.patience:
                self.stop_reason = (f"early stopping: held-out reward has not improved on {self.best_reward:.4f} "
                                    f"(iteration {self.best_iteration}) for {self.bad_evals} evaluations")

    def restore_best(self) -> int | None:
        """Load the best evaluated policy weights (when early stopping asks for it); return its iteration."""
        from chatalign.rlhf.ppo.checkpoint import load_weights

        if not (self.cfg.early_stopping.restore_best and (self.best_dir / "policy.safetensors").is_file()):
            return None
        meta = json.loads((self.best_dir / "meta.json").read_text())
        if meta.get("iteration") != self.best_iteration:
            # best/ was written by a killed attempt after its last checkpoint and not rewritten on resume
            log.warning("PPO: %s holds iteration %s, not the best iteration %s: keeping the final policy",
                        self.best_dir, meta.get("iteration"), self.best_iteration)
            return None
        if self.engines is not None:  # ZeRO shards: the export puts the best weights in place of the final ones
            self.best_weights = self.best_dir / "policy.safetensors"
        else:
            load_weights(self.models.policy, self.best_dir / "policy.safetensors")
        return self.best_iteration

    def export(self, target: Path) -> None:
        """The policy as a whole HF causal LM in `target` (written by rank 0)."""
        if self.engines is not None:
            from chatalign.rlhf.ppo.checkpoint_ds import export_policy_ds

            export_policy_ds(self.models, target, self.dist, getattr(self, "best_weights", None))
        else:
            from chatalign.rlhf.ppo.models import export_policy

            export_policy(self.models, target)


def _mean_or_none(x) -> float | None:
    return None if x is None else float(torch.as_tensor(x).float().mean())


def _row_mean(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows]
    return None if any(v is None for v in vals) else sum(vals) / len(vals)


