"""NaN/inf in the loss or the gradients: the step is skipped with a warning (no weight moves), up to
`optim.max_nonfinite_skips`; one more stops the run with exit code 3 and a clear message, the last good
checkpoint kept. PPO guards (KL, reward bounds) stop a round from the command line with a clear message."""

from __future__ import annotations

import json
import logging
import math
import re

import pytest
import torch

from chatalign.cli.main import main
from chatalign.runs import RunDir
from chatalign.text.packing import collate_rows, pack_examples
from chatalign.training.checkpoint import latest_checkpoint, list_checkpoints
from chatalign.training.config import CheckpointConfig, DeepSpeedConfig, OptimConfig
from chatalign.training.distributed import DistContext
from chatalign.training.lm_loss import PackedLMLoss
from chatalign.training.loop import NonFiniteLoss, TrainJob, train

from .conftest import assert_loadable

STEPS = 6


class FaultyLoss(PackedLMLoss):
    """The real packed LM loss, with a fault injected at chosen steps (1-based; one forward per step)."""

    def __init__(self, model, at: set[int], fault: str):
        super().__init__(model)
        self.at, self.fault, self.calls = at, fault, 0

    def forward(self, **batch):
        self.calls += 1
        loss, aux = (out if isinstance(out := super().forward(**batch), tuple) else (out, {}))
        if self.calls in self.at:
            if self.fault == "grad":  # finite loss, NaN gradients: d sqrt(x)/dx at 0 is inf, times 0 is NaN
                p = next(self.model.parameters())
                loss = loss + 0.0 * torch.sqrt(p.sum() - p.sum().detach())
            else:
                loss = loss * float(self.fault)
        return loss, aux


def job(tiny_model, at, fault):
    g = torch.Generator().manual_seed(0)
    examples = []
    for i in range(STEPS):
        n = 10 + i
        ids = torch.randint(5, 2000, (n,), generator=g).tolist()
        examples.append((ids, [0] * (n // 2) + [1] * (n - n // 2)))
    rows = pack_examples(examples, 16)[:STEPS]
    assert len(rows) == STEPS
    return TrainJob(FaultyLoss(tiny_model, at, fault), rows, [r.n_trained for r in rows], collate_rows,
                    [[i] for i in range(STEPS)])


def weights(ck):
    from safetensors.torch import load_file

    return load_file(str(ck / "model.safetensors"))


def run(tmp_path, tiny_model, at, fault, max_skips=2, grad_clip=1.0):
    r = RunDir(tmp_path / "run", "test")
    return r, train(job(tiny_model, at, fault), OptimConfig(lr=1e-2, max_nonfinite_skips=max_skips,
                                                             grad_clip=grad_clip),
                    CheckpointConfig(every_steps=1, keep_last=10), DeepSpeedConfig(), r, DistContext(),
                    resume=False, progress=False)


@pytest.mark.parametrize("fault", ["nan", "inf", "-inf", "grad"])
def test_faulty_steps_are_skipped_with_a_warning_up_to_the_limit(fault, tmp_path, tiny_model, caplog):
    caplog.set_level(logging.WARNING, logger="chatalign.training.loop")
    r, last = run(tmp_path, tiny_model, {3, 4}, fault)
    assert last["step"] == STEPS
    warnings = [m for m in caplog.messages if "non-finite" in m]
    assert len(warnings) == 2 and "(1/2 allowed)" in warnings[0] and "(2/2 allowed)" in warnings[1]
    cks = {int(p.name[5:]): p for p in list_checkpoints(r.checkpoints)}
    w2, w3, w4, w5 = (weights(cks[s]) for s in (2, 3, 4, 5))
    assert all(torch.equal(w2[k], w3[k]) and torch.equal(w2[k], w4[k]) for k in w2), "a skipped step moved weights"
    assert any(not torch.equal(w4[k], w5[k]) for k in w4), "training did not go on after the skipped steps"
    assert all(torch.isfinite(t).all() for t in weights(cks[STEPS]).values())
    assert json.loads((cks[STEPS] / "state.json").read_text())["nonfinite_skips"] == 2
    logged = r.read_metrics()
    bad = [m["step"] for m in logged if not (math.isfinite(m["loss"]) and math.isfinite(m["grad_norm"]))]
    assert bad == [3, 4]


def test_one_fault_too_many_stops_with_exit_code_3_and_keeps_the_last_good_checkpoint(tmp_path, tiny_model):
    with pytest.raises(NonFiniteLoss, match=r"stopped at step 5: 3 steps .*max_nonfinite_skips=2.*last good "
                                            r"checkpoint") as err:
        run(tmp_path, tiny_model, {3, 4, 5}, "nan")
    assert err.value.exit_code == 3
    ck = latest_checkpoint(tmp_path / "run" / "checkpoints")
    assert ck.name == "step-0000004"
    assert_loadable(ck)
    good = weights(ck.with_name("step-0000002"))
    assert all(torch.equal(good[k], v) for k, v in weights(ck).items())


def test_no_gradient_clipping_is_not_mistaken_for_a_non_finite_gradient(tmp_path, tiny_model, caplog):
    """grad_clip=None: the gradient norm is still measured, and a healthy run skips nothing."""
    caplog.set_level(logging.WARNING, logger="chatalign.training.loop")
    r, last = run(tmp_path, tiny_model, set(), "nan", max_skips=0, grad_clip=None)
    assert last["step"] == STEPS and not [m for m in caplog.messages if "non-finite" in m]
    assert all(math.isfinite(m["grad_norm"]) and m["grad_norm"] > 0 for m in r.read_metrics())


def test_ppo_guard_stops_the_round_from_the_command_line(recipe_files, tmp_path, capsys):
    """`chatalign rlhf ppo` with a KL bound a later iteration exceeds: exit 2, the bound named, the last
    completed iteration's checkpoint kept and loadable, the run not marked finished."""
    out = tmp_path / "ppo"
    code = main(["rlhf", "ppo", "--config", str(recipe_files["rlhf_ppo"]), "--no-progress", f"output_dir={out}",
                 "ppo.guards.max_kl=1e-6"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and "Traceback" not in err
    m = re.match(r"chatalign: error: PPO stopped at iteration (\d+): mean KL .* exceeds ppo.guards.max_kl=1e-06", err)
    assert m and int(m.group(1)) > 1, err
    ck = latest_checkpoint(out / "ppo" / "checkpoints")
    assert ck.name == f"step-{int(m.group(1)) - 1:07d}", "the completed iterations' checkpoint is missing"
    assert_loadable(ck)
    assert json.loads((out / "manifest.json").read_text())["status"] != "finished"


def test_disk_full_during_a_ppo_checkpoint_keeps_the_previous_one(tmp_path, tiny_model, monkeypatch):
    import errno
    import os

    from chatalign.errors import RunError
    from chatalign.rlhf.ppo.checkpoint import PPOCheckpoints
    from chatalign.training.backend import TorchBackend

    net = TorchBackend(tiny_model, torch.optim.AdamW(tiny_model.parameters()))
    checkpoints = PPOCheckpoints(tmp_path / "ppo", net, net, DistContext(), keep=5)
    root = checkpoints.root
    first = checkpoints.save(1, {"best": None})
    before = {p.name: p.read_bytes() for p in first.iterdir()}

    def full_disk(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(RunError, match="No space left.*previous checkpoint is intact"):
        checkpoints.save(2, {"best": None})
    assert latest_checkpoint(root) == first and {p.name: p.read_bytes() for p in first.iterdir()} == before
    assert not list(root.glob(".tmp-*")), "a half-written checkpoint was left behind"
