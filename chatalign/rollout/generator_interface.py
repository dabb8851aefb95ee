"""The interface of a generator (chatalign.rollout.generator), in a module of its own: the engines that implement it
(chatalign.rollout.vllm_engine) import it without importing the module that starts them."""

from __future__ import annotations


class Generator:
    """`rollouts(tokenizer, prompt_ids, **settings) -> list[Rollout]` with the settings of
    `chatalign.rollout.engine.generate_rollouts`, and `close()` (frees the model or the engine).

    `copies_weights`: the generator holds its own copy of the model's weights (an engine), so a trained model's
    new weights reach it only through `sync_weights(model)`; the native engine reads the live model and ignores
    it. `collective`: every rank of a launch must call `rollouts` and `sync_weights` together."""

    copies_weights = False
    collective = False

    def rollouts(self, tokenizer, prompt_ids: list[list[int]], **settings) -> list:
        raise NotImplementedError

    def sync_weights(self, model) -> None:
        """Make the generator answer with `model`'s current weights (nothing to do for one that reads them)."""

    def close(self) -> None:
        raise NotImplementedError
