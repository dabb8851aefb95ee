"""Reference log-probs: log pi_ref(y|x) of every pair's two answers, computed once before training.

The reference is the starting model (Rafailov et al. sec. 4: pi_ref = pi_SFT), frozen; its log-probs do not
change during training, so one no-grad pass over the training and held-out pairs replaces a second model in
memory and a second forward per step. They are written to `reference_logps.safetensors` in the run directory
with a fingerprint of the model and the token sequences they belong to; a resumed run reads them back
instead of recomputing them (and recomputes only when the fingerprint differs, e.g. after
allow_changed_inputs). Fresh and resumed runs both train on the values read back from the file.
Several ranks each score a share of the pairs and gather the rest.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from chatalign.dpo.pairs import DPOPair

log = logging.getLogger(__name__)

FILE = "reference_logps.safetensors"


def model_identity(name: str) -> str:
    """The starting model's name plus the name, size and modification time of each file of its directory."""
    from chatalign.models import resolve_model_path

    path = Path(resolve_model_path(name))
    if not path.is_dir():
        return str(name)
    files = sorted(p for p in path.iterdir() if p.is_file())
    return str(name) + "".join(f"|{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)


def fingerprint(model_name: str, groups: dict[str, Sequence[DPOPair]]) -> str:
    """Hash of the reference model (model_identity) and every scored token sequence, group by group."""
    h = hashlib.sha256(model_identity(model_name).encode())
    for name, pairs in groups.items():
        h.update(f"|{name}|{len(pairs)}".encode())
        for p in pairs:
            h.update(repr((p.chosen_ids, p.chosen_start, p.rejected_ids, p.rejected_start)).encode())
    return h.hexdigest()


@torch.no_grad()
def score_pairs(model, pairs: Sequence[DPOPair], batch_tokens: int) -> torch.Tensor:
    """[len(pairs), 2] float32 answer log-probs (chosen, rejected) under `model`, in eval mode."""
    from chatalign.dpo.model import answer_logps
    from chatalign.dpo.pairs import collate_dpo, scoring_rows
    from chatalign.progress import counting_bar

    was_training = model.training
    model.eval()
    out = []
    try:
        with counting_bar(len(pairs), "reference log-probs", "pair") as bar:
            for row in scoring_rows(pairs, batch_tokens):
                batch = collate_dpo([row])
                logps = answer_logps(model, batch["input_ids"], batch["position_ids"], batch["labels"],
                                     batch["label_seq"], 2 * len(row.pairs))
                out.append(logps.view(-1, 2).cpu())
                if bar is not None:
                    bar.update(len(row.pairs))
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 2)


def score_sharded(model, pairs: Sequence[DPOPair], batch_tokens: int, dist) -> torch.Tensor:
    """score_pairs with each rank taking every world_size-th pair; every rank gets all of them, in order."""
    if dist.world_size == 1:
        return score_pairs(model, pairs, batch_tokens)
    import torch.distributed as tdist

    mine = score_pairs(model, list(pairs[dist.rank::dist.world_size]), batch_tokens)
    shards: list = [None] * dist.world_size
    tdist.all_gather_object(shards, mine)
    full = torch.zeros(len(pairs), 2)
    for rank, shard in enumerate(shards):
        full[rank::dist.world_size] = shard
    return full


def write_reference(path: Path, tensors: dict[str, torch.Tensor], key: str) -> None:
    """safetensors file written to a temp name beside `path`, then renamed into place."""
    from safetensors.torch import save_file

    from chatalign.data_schemas.file_output import give_umask_modes
    from chatalign.runs import fault_disk_full, temp_file_beside

    fd, tmp = temp_file_beside(path, f".{path.name}-")
    os.close(fd)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata={"fingerprint": key})
        fault_disk_full(path)
        give_umask_modes(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def read_reference(path: Path, key: str) -> dict[str, torch.Tensor] | None:
    """The stored log-probs, or None when there are none or they were computed for other inputs."""
    from safetensors import safe_open

    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as f:
        if (f.metadata() or {}).get("fingerprint") != key:
            log.warning("%s was computed for another model or other pairs: computing it again", path)
            return None
        return {k: f.get_tensor(k) for k in f.keys()}


def attach_reference(run_dir: Path, model, model_name: str, groups: dict[str, Sequence[DPOPair]],
                     batch_tokens: int, dist) -> bool:
    """Fill in ref_chosen / ref_rejected of every pair from the run directory's file, computing and writing it
    first when it is missing or stale. Returns True when it was computed in this call."""
    path = run_dir / FILE
    key = fingerprint(model_name, groups)
    stored = dist.broadcast_object(read_reference(path, key) is not None if dist.is_main else None)
    if not stored:
        log.info("reference log-probs: scoring %d pairs with the starting model",
                 sum(len(p) for p in groups.values()))
        tensors = {name: score_sharded(model, pairs, batch_tokens, dist) for name, pairs in groups.items()}
        if dist.is_main:
            write_reference(path, tensors, key)
        dist.barrier()
    tensors = read_reference(path, key)
    for name, pairs in groups.items():
        values = tensors[name].tolist()
        for pair, (chosen, rejected) in zip(pairs, values, strict=True):
            pair.ref_chosen, pair.ref_rejected = chosen, rejected
    return not stored
