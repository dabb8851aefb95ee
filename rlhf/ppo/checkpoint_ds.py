"""PPO checkpoints, best policy and export under DeepSpeed engines (several ranks or `ppo.deepspeed.enabled`).

Layout of `ppo/checkpoints/step-0000007/`: `policy/` and `value/` hold each engine's own checkpoint (every
rank writes its shard of the weights and optimizer states), `state.json` the iteration, rank 0's RNG and the
loop state. Rank 0 creates the temporary directory, every rank writes into it, and rank 0 renames it into
place after a barrier, so a kill still leaves either the previous checkpoint or the new one.
`ppo/best/policy.safetensors` holds the whole trainable policy weights, gathered from the shards.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from chatalign.errors import RunError
from chatalign.rlhf.ppo.checkpoint import rng_state, set_rng_state
from chatalign.training.checkpoint import safe_deepspeed_load

TAG = "state"


def save_ppo_checkpoint_ds(root: Path, iteration: int, engines, dist, state: dict) -> Path:
    final = root / f"step-{iteration:07d}"
    if dist.is_main:
        root.mkdir(parents=True, exist_ok=True)
    tmp = Path(dist.broadcast_object(tempfile.mkdtemp(prefix=".tmp-", dir=root) if dist.is_main else None))
    try:
        engines.policy.save_checkpoint(str(tmp / "policy"), tag=TAG, save_latest=False)
        engines.value.save_checkpoint(str(tmp / "value"), tag=TAG, save_latest=False)
        dist.barrier()
        if dist.is_main:
            (tmp / "state.json").write_text(json.dumps({"iteration": iteration, "rng": rng_state(), **state}))
            old = final.with_name(f".old-{final.name}")
            if final.exists():
                os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        dist.barrier()
    except OSError as exc:
        if dist.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        raise RunError(f"could not write PPO checkpoint {final}: {exc.strerror or exc}; the previous checkpoint "
                       "is intact") from None
    return final


def load_ppo_checkpoint_ds(path: Path, engines) -> dict:
    state = json.loads((path / "state.json").read_text())
    for name, engine in (("policy", engines.policy), ("value", engines.value)):
        with safe_deepspeed_load(engine):  # DeepSpeed's own loader would unpickle (weights_only=False)
            loaded, _ = engine.load_checkpoint(str(path / name), tag=TAG, load_module_strict=False)
        if loaded is None:
            raise RunError(f"{path / name} holds no DeepSpeed checkpoint of the {name} (was the run started "
                           "without DeepSpeed, or with another world size?)")
    set_rng_state(state["rng"])
    return state


def gathered_trainable(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Whole trainable weights on every rank (one collective per parameter under ZeRO-3)."""
    from chatalign.training.zero_gather import gather_full_state

    wanted = {n for n, p in module.named_parameters() if p.requires_grad}
    return {n: t.contiguous() for n, t in gather_full_state(module).items() if n in wanted}


def save_best_ds(policy: torch.nn.Module, target: Path, meta: dict, dist) -> None:
    """The best policy so far (whole trainable weights) in `target/`, written by rank 0."""
    from safetensors.torch import save_file

    from chatalign.rlhf.ppo.checkpoint import _atomic_dir

    weights = gathered_trainable(policy)
    if dist.is_main:
        def write(tmp: Path) -> None:
            save_file(weights, str(tmp / "policy.safetensors"))
            (tmp / "meta.json").write_text(json.dumps(meta))

        _atomic_dir(target, write)
    dist.barrier()


def export_policy_ds(models, target: Path, dist, best_weights: Path | None = None) -> None:
    """Write the policy as a whole HF causal LM on rank 0: shards gathered (and the best evaluated weights put
    in place of the final ones when early stopping chose them), LoRA merged (ZeRO-2 only: unsharded)."""
    from safetensors.torch import load_file

    from chatalign.models import save_hf_atomic
    from chatalign.training.zero_gather import gather_full_state

    policy = models.policy
    if models.uses_lora:
        if best_weights is not None:
            from chatalign.rlhf.ppo.checkpoint import load_weights

            load_weights(policy, best_weights)  # ZeRO-0..2: parameters are whole on every rank
        policy = policy.merge_and_unload()
        models.policy = policy
        best_weights = None
    state = gather_full_state(policy)
    if best_weights is not None:
        best = load_file(str(best_weights))
        unknown = [n for n in best if n not in state]
        if unknown:
            raise RunError(f"{best_weights} does not match the policy (unexpected {unknown[:3]})")
        state.update(best)
    if dist.is_main:
        save_hf_atomic(policy, models.tokenizer, target, state_dict=state)
    dist.barrier()
