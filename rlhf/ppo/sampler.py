"""Where PPO's answers come from: the policy sampled by the rollout engine (chatalign.rollout), one answer per
prompt. A component of its own so that another generation backend (or a test replaying fixed answers) can take
its place: anything called as `sampler(prompt_ids, seed) -> list[Rollout]`."""

from __future__ import annotations

from collections.abc import Callable

Sampler = Callable[[list[list[int]], int], list]


class PolicySampler:
    """One sampled answer per prompt from the current policy with the given decoding settings; with
    `return_logprobs`, log pi_old per answer token (the training batch)."""

    def __init__(self, models, *, max_new_tokens: int, temperature: float, top_p: float, batch_size: int,
                 return_logprobs: bool):
        self.models = models
        self.settings = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p,
                         "batch_size": batch_size, "return_logprobs": return_logprobs}

    def __call__(self, prompt_ids: list[list[int]], seed: int) -> list:
        from chatalign.rollout.engine import generate_rollouts

        # models.policy is looked up at each call: a LoRA export replaces it with the merged model
        return generate_rollouts(self.models.policy, self.models.tokenizer, prompt_ids, num_samples=1, seed=seed,
                                 **self.settings)


def training_sampler(models, cfg) -> PolicySampler:
    """Answers of the iteration's batch at the training temperature (log-probs at T=1, see Rollout)."""
    return PolicySampler(models, max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                         batch_size=cfg.gen_batch_size, return_logprobs=True)


def evaluation_sampler(models, cfg) -> PolicySampler:
    """Held-out answers: greedy, or seeded samples at `early_stopping.temperature`."""
    es = cfg.early_stopping
    return PolicySampler(models, max_new_tokens=es.max_new_tokens or cfg.max_new_tokens, temperature=es.temperature,
                         top_p=1.0, batch_size=cfg.gen_batch_size, return_logprobs=False)
