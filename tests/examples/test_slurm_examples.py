"""The SLURM examples' recipe overrides are accepted by the stage's config, and the PPO one fits the GPU its
header promises (per `chatalign plan`, the planner the header quotes)."""

import json
import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PPO = ROOT / "examples" / "slurm" / "ppo.sbatch"


def fit_overrides(script: Path) -> list[str]:
    """The words of the script's `FIT=( ... )` array (it may span lines)."""
    match = re.search(r"^FIT=\((.*?)\)", script.read_text(), re.S | re.M)
    assert match, f"{script}: no FIT=(...) array"
    return shlex.split(match.group(1))


def test_ppo_example_overrides_validate_and_fit_one_80gb_gpu(capsys):
    from chatalign.cli.main import main

    overrides = fit_overrides(PPO)
    recipe = re.search(r"RECIPE=\$\{RECIPE:-(\S+)\}", PPO.read_text()).group(1)
    code = main(["plan", "--config", str(ROOT / recipe), "--gpus", "1", "--gpu-memory", "80GB", "--json",
                 "mode=ppo", *overrides])
    out = capsys.readouterr().out
    assert code == 0, out
    plan = json.loads(out)
    peak = re.search(r"estimated peak ([\d.]+) GiB", PPO.read_text()).group(1)
    assert plan["fits"] and f"{plan['peak_bytes'] / 2**30:.1f}" == peak, (plan["peak_bytes"] / 2**30, peak)
