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
    if models.uses_lora and (models.quantized or policy_backend.partitioned):
        policy = merge_into_reloaded_base(models, policy_backend, target.parent, dist)
    else:
        if models.uses_lora:
            # every rank merges: under ZeRO-2 `export_state` below is a collective over the merged model
            if dist.is_main and models.lora is not None and models.lora.writes_adapter:
                from chatalign.training.lora import save_adapter

                save_adapter(policy, target.parent)
            policy = policy.merge_and_unload()
        state = policy_backend.export_state(policy)  # a collective under DeepSpeed; None: whole weights here
    if policy is not None:  # None: a rank other than the main one after a ZeRO-3 LoRA merge keeps its shards
        models.policy = policy
    if dist.is_main:
        save_hf_atomic(policy, models.tokenizer, target, state_dict=state)
    dist.barrier()


def merge_into_reloaded_base(models, policy_backend, run_dir: Path, dist):
    """QLoRA (4-bit rounding) or ZeRO-3 (placeholders): the trained adapter merged into the policy's base reloaded
    in full precision, as the other stages' LoRA runs are finished; the merged model on the main rank, else None."""
    from chatalign.models import load_causal_lm
    from chatalign.training.lora import finish_lora

    if models.base_path is None:
        raise RuntimeError("a QLoRA or ZeRO-3 LoRA policy needs PPOModels.base_path to export its merged model")
    gathered = policy_backend.export_state(models.policy) if policy_backend.partitioned else None  # collective
    return finish_lora(models.policy, models.lora, run_dir, dist.is_main,
                       lambda: load_causal_lm(models.base_path, models.dtype), gathered)
