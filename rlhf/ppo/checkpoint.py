"""PPO checkpoints, the best evaluated policy and the export, through the policy and value backends.

Layout of `ppo/checkpoints/step-0000007/` (after iteration 7 completed), plain torch: `policy.safetensors` and
`value.safetensors` (trainable parameters only: the LoRA adapter for a LoRA policy), `optimizers.pt`
(tensors and plain values, read back with `weights_only=True`); under DeepSpeed engines: `policy/` and
`value/`, each engine's own checkpoint (every rank writes its shard); both: `state.json` (iteration, RNG of
rank 0, the loop state). Written under a temporary name and renamed into place (rank 0, after every rank wrote
its part), so a kill leaves either the previous checkpoint or the new one, never half of one. `ppo/best/`
holds the best evaluated policy's whole trainable weights (gathered from the shards) the same way.
"""

from __future__ import annotations

import json
import random
from functools import cache
from pathlib import Path

import torch

from chatalign.training.checkpoint import (
    latest_checkpoint,
    prune_checkpoints,
    step_dir,
    write_dir_atomic,
)

BEST_WEIGHTS = "policy.safetensors"


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state().tolist(), "python": repr(random.getstate())}
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict) -> None:
    import ast

    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "python" in state:
        random.setstate(_tuples(ast.literal_eval(state["python"])))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


class PPOCheckpoints:
    """Saves and restores a PPO run's state in `work/checkpoints`, and its best policy in `work/best`."""

    def __init__(self, work: Path, policy, value, dist, keep: int):
        self.root, self.best_dir = work / "checkpoints", work / "best"
        self.policy, self.value, self.dist, self.keep = policy, value, dist, keep

    def latest(self) -> Path | None:
        return latest_checkpoint(self.root)

    def save(self, iteration: int, state: dict) -> Path:
        """Checkpoint after `iteration` completed iterations (every rank calls it), then prune old ones."""

        def every_rank(tmp: Path) -> None:
            opts = {name: net.save(tmp, weights=f"{name}.safetensors", shards=name)
                    for name, net in (("policy", self.policy), ("value", self.value))}
            if all(o is not None for o in opts.values()):  # plain torch: the two optimizers in one file
                torch.save(opts, tmp / "optimizers.pt")

        def main(tmp: Path) -> None:
            (tmp / "state.json").write_text(json.dumps({"iteration": iteration, "rng": rng_state(), **state}))

        path = write_dir_atomic(step_dir(self.root, iteration), self.dist, every_rank, main)
        if self.dist.is_main:
            prune_checkpoints(self.root, self.keep)
        self.dist.barrier()
        return path

    def load(self, path: Path) -> dict:
        """Restore both networks, their optimizers and the RNG from `path`; return its state.json."""
        state = json.loads((path / "state.json").read_text())
        opts = cache(lambda: torch.load(path / "optimizers.pt", weights_only=True))
        for name, net in (("policy", self.policy), ("value", self.value)):
            net.load(path, weights=f"{name}.safetensors", shards=name, optimizer_state=lambda name=name: opts()[name])
        set_rng_state(state["rng"])
        return state

    def save_best(self, meta: dict) -> None:
        """The policy's whole trainable weights and `meta` in `best/` (gathered on every rank, written by rank 0)."""
        from safetensors.torch import save_file

        weights = self.policy.trainable_state()

        def main(tmp: Path) -> None:
            save_file(weights, str(tmp / BEST_WEIGHTS))
            (tmp / "meta.json").write_text(json.dumps(meta))

        write_dir_atomic(self.best_dir, self.dist, lambda tmp: None, main, what="copy")

    def best_meta(self) -> dict | None:
        if not (self.best_dir / BEST_WEIGHTS).is_file():
            return None
        return json.loads((self.best_dir / "meta.json").read_text())

    def load_best(self) -> None:
        """The best policy's weights into the policy (every rank calls it: ZeRO-3 shards are refilled)."""
        self.policy.load_trainable(self.best_dir / BEST_WEIGHTS)


def export_policy(models, policy_backend, target: Path, dist) -> None:
    """The policy as a whole HF causal LM in `target`, written by rank 0: LoRA merged, ZeRO-3 shards gathered;
    with `lora.save: both` the adapter (PEFT format) also in `adapter/` beside `target`."""
    from chatalign.models import save_hf_atomic

    policy, state = models.policy, None
    if models.quantized:  # one process (no DeepSpeed): merged into the base reloaded in full precision
        policy = export_qlora_policy(models, target.parent)
    elif models.uses_lora and policy_backend.partitioned:
        # ZeRO-3 holds placeholders: merge the gathered whole state (a collective) into a model built from it
        policy = merge_gathered_lora(policy, policy_backend.export_state(policy), models.lora, target.parent,
                                     dist.is_main)
    else:
        if models.uses_lora:
            if dist.is_main and models.lora is not None and models.lora.save == "both":
                from chatalign.training.lora import save_adapter

                save_adapter(policy, target.parent)
            policy = policy.merge_and_unload()
        state = policy_backend.export_state(policy)  # a collective under DeepSpeed; None: whole weights here
    if policy is not None:  # None: a rank other than the main one after a ZeRO-3 LoRA merge keeps its shards
        models.policy = policy
    if dist.is_main:
        save_hf_atomic(policy, models.tokenizer, target, state_dict=state)
    dist.barrier()


def merge_gathered_lora(policy, state: dict, lora_cfg, run_dir: Path, is_main: bool):
    """On the main rank: a fresh LoRA model with the gathered whole state (base and adapter weights) loaded,
    the adapter merged; None elsewhere. `adapter/` is written too with `lora.save: both`."""
    if not is_main:
        return None
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    dtype = next(iter(state.values())).dtype
    fresh = get_peft_model(AutoModelForCausalLM.from_config(policy.get_base_model().config, dtype=dtype),
                           policy.peft_config["default"])
    result = fresh.load_state_dict(state, strict=False)
    params = {n for n, _ in fresh.named_parameters()}
    if result.unexpected_keys or params - set(state):
        raise RuntimeError(f"the gathered policy does not fit its LoRA model: unexpected "
                           f"{result.unexpected_keys[:3]}, missing {sorted(params - set(state))[:3]}")
    if lora_cfg is not None and lora_cfg.save == "both":
        from chatalign.training.lora import save_adapter

        save_adapter(fresh, run_dir)
    return fresh.merge_and_unload()


def export_qlora_policy(models, run_dir: Path):
    """The QLoRA policy's trained adapter merged into its base reloaded in full precision (the 4-bit rounding
    stays out of the saved model), as the other stages' QLoRA runs are finished."""
    from chatalign.models import load_causal_lm
    from chatalign.training.lora import finish_lora

    return finish_lora(models.policy, models.lora, run_dir, True,
                       lambda: load_causal_lm(models.base_path, models.dtype))
