"""PPO checkpoints: policy and value weights, both optimizers, RNG states and the loop state, written atomically.

Layout of `ppo/checkpoints/step-0000007/` (after iteration 7 completed): `policy.safetensors` and
`value.safetensors` (trainable parameters only: the LoRA adapter for a LoRA policy), `optimizers.pt`
(tensors and plain values, read back with `weights_only=True`), `state.json` (iteration, RNG, early stopping).
The directory is written under a temporary name and renamed into place, so a kill leaves either the previous
checkpoint or the new one, never half of one. `ppo/best/` holds the best evaluated policy weights the same way.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path

import torch

from chatalign.errors import RunError
from chatalign.training.checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    pause_for_fault_tests,
    prune_checkpoints,
)

__all__ = ["save_ppo_checkpoint", "load_ppo_checkpoint", "latest_checkpoint", "list_checkpoints",
           "prune_checkpoints", "trainable_weights", "load_weights", "save_weights_atomic", "rng_state",
           "set_rng_state"]


def trainable_weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    # named_parameters() lists a tied weight once, which safetensors requires
    return {n: p.detach().to("cpu").contiguous() for n, p in module.named_parameters() if p.requires_grad}


def load_weights(module: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import load_file

    weights = load_file(str(path))
    params = dict(module.named_parameters())
    wanted = [n for n, p in params.items() if p.requires_grad]
    missing = [n for n in wanted if n not in weights]
    unknown = [n for n in weights if n not in params]
    if missing or unknown:
        raise RunError(f"{path} does not match the model (missing {missing[:3]}, unexpected {unknown[:3]}): "
                       "was the run started with another model or LoRA setting?")
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor)


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


def _atomic_dir(final: Path, write) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
    try:
        write(tmp)
        pause_for_fault_tests(tmp)
        old = None
        if final.exists():
            old = final.with_name(f".old-{final.name}")
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RunError(f"could not write {final}: {exc.strerror or exc}; the previous copy is intact") from None
    return final


def save_weights_atomic(module: torch.nn.Module, target: Path, meta: dict) -> Path:
    """Trainable weights + meta.json in `target/`, replaced atomically (the best policy so far)."""
    from safetensors.torch import save_file

    def write(tmp: Path) -> None:
        save_file(trainable_weights(module), str(tmp / "policy.safetensors"))
        (tmp / "meta.json").write_text(json.dumps(meta))

    return _atomic_dir(target, write)


def save_ppo_checkpoint(root: Path, iteration: int, policy, value, policy_opt, value_opt, state: dict) -> Path:
    from safetensors.torch import save_file

    def write(tmp: Path) -> None:
        save_file(trainable_weights(policy), str(tmp / "policy.safetensors"))
        save_file(trainable_weights(value), str(tmp / "value.safetensors"))
        torch.save({"policy": policy_opt.state_dict(), "value": value_opt.state_dict()}, tmp / "optimizers.pt")
        full = {"iteration": iteration, "rng": rng_state(), **state}
        (tmp / "state.json").write_text(json.dumps(full))

    return _atomic_dir(root / f"step-{iteration:07d}", write)


def load_ppo_checkpoint(path: Path, policy, value, policy_opt, value_opt) -> dict:
    state = json.loads((path / "state.json").read_text())
    load_weights(policy, path / "policy.safetensors")
    load_weights(value, path / "value.safetensors")
    opts = torch.load(path / "optimizers.pt", weights_only=True)
    policy_opt.load_state_dict(opts["policy"])
    value_opt.load_state_dict(opts["value"])
    set_rng_state(state["rng"])
    return state
