"""Where PPO's answers come from: the current policy, one answer per prompt, through a generator
(chatalign.rollout.generator): the native engine on the policy itself, or a vLLM engine that holds a copy of the
policy's weights and gets them anew, in memory, before every generation. A component of its own so that a test
replaying fixed answers can take its place: anything called as `sampler(prompt_ids, seed) -> list[Rollout]`."""

from __future__ import annotations

from collections.abc import Callable

Sampler = Callable[[list[list[int]], int], list]


class PolicySampler:
    """One sampled answer per prompt from the current policy with the given decoding settings; with
    `return_logprobs`, log pi_old per answer token (the training batch), from the policy itself."""

    def __init__(self, models, generator, *, max_new_tokens: int, temperature: float, top_p: float,
                 batch_size: int, return_logprobs: bool):
        self.models, self.generator = models, generator
        self.return_logprobs = return_logprobs
        self.settings = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p,
                         "batch_size": batch_size}

    @property
    def collective(self) -> bool:
        """Every rank calls, with prompts or not (an engine per rank)."""
        return self.generator.collective

    def __call__(self, prompt_ids: list[list[int]], seed: int) -> list:
        # the policy may have changed since the engine's last generation (an update, a restored checkpoint)
        self.generator.sync_weights(self.models.policy)
        rows = self.generator.rollouts(self.models.tokenizer, prompt_ids, num_samples=1, seed=seed,
                                       return_logprobs=self.return_logprobs and not self.generator.copies_weights,
                                       **self.settings)
        if self.return_logprobs and self.generator.copies_weights:
            recompute_logprobs(self.models.policy, rows, self.settings["batch_size"])
        return rows


def recompute_logprobs(policy, rows: list, batch_size: int) -> None:
    """Each answer's log pi_old from the policy's own forward pass (an engine's sampling log-probs differ from the
    training model's numerically, and PPO's ratio must start at exactly 1)."""
    from chatalign.rollout.logprobs import sequence_logprobs

    scored = [i for i, r in enumerate(rows) if r.response_ids]
    for r in rows:
        r.logprobs = []
    if not scored:
        return
    lps = sequence_logprobs(policy, [rows[i].prompt_ids + rows[i].response_ids for i in scored],
                            [len(rows[i].prompt_ids) for i in scored], batch_size)
    for i, lp in zip(scored, lps):
        rows[i].logprobs = [float(x) for x in lp]


def ppo_generator(models, generation, model_path: str, model_cfg, dist):
    """The PPO phase's generator: the native engine on the live policy, or one vLLM engine over the starting
    model's directory (its weights replaced by the policy's before each generation; under several ranks one per
    rank, each given the weights the rank has gathered)."""
    from chatalign.rollout.generator import launch_ranks, vllm_generator

    if generation.backend == "native":
        return default_generator(models)
    return vllm_generator(generation, model_path, model_cfg, launch_ranks(dist))


def training_sampler(models, cfg, generator=None) -> PolicySampler:
    """Answers of the iteration's batch at the training temperature (log-probs at T=1, see Rollout)."""
    return PolicySampler(models, generator or default_generator(models), max_new_tokens=cfg.max_new_tokens,
                         temperature=cfg.temperature, top_p=cfg.top_p, batch_size=cfg.gen_batch_size,
                         return_logprobs=True)


def evaluation_sampler(models, cfg, generator=None) -> PolicySampler:
    """Held-out answers: greedy, or seeded samples at `early_stopping.temperature`."""
    es = cfg.early_stopping
    return PolicySampler(models, generator or default_generator(models),
                         max_new_tokens=es.max_new_tokens or cfg.max_new_tokens, temperature=es.temperature,
                         top_p=1.0, batch_size=cfg.gen_batch_size, return_logprobs=False)


def default_generator(models):
    """The native engine on the live policy (looked up at each call: a LoRA export replaces it)."""
    from chatalign.rollout.generator import NativeGenerator

    return NativeGenerator(lambda: models.policy)
