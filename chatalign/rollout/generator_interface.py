"""The interface of a generator (chatalign.rollout.generator), in a module of its own: the engines that implement it
(chatalign.rollout.vllm_engine) import it without importing the module that starts them."""

from __future__ import annotations


class Generator:
    """`rollouts(tokenizer, prompt_ids, **settings) -> list[Rollout]` with the settings of
    `chatalign.rollout.engine.generate_rollouts`, and `close()` (frees the model or the engine)."""

    def rollouts(self, tokenizer, prompt_ids: list[list[int]], **settings) -> list:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
