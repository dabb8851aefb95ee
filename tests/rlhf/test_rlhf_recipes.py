"""The RLHF recipes validate, carry the paper's numbers, and a dry run names missing inputs clearly."""

from pathlib import Path

import pytest

from chatalign.config import load_config
from chatalign.errors import ConfigError
from chatalign.rlhf.config import RLHFRoundConfig

ROOT = Path(__file__).resolve().parents[2]
RECIPES = [ROOT / "recipes/quickstart/rlhf_round.yaml", ROOT / "recipes/quickstart/ppo_round.yaml",
           ROOT / "recipes/llama2-7b/rlhf_round.yaml"]


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_recipe_validates_and_data_paths_are_relative_to_the_recipe(path):
    cfg = load_config(RLHFRoundConfig, path)
    assert cfg.stage == "rlhf"
    assert Path(cfg.data.prompts).is_absolute() and cfg.data.prompts.startswith(str(path.parent))
    assert not Path(cfg.start).is_absolute() and cfg.start.startswith("runs/")  # run dirs: cwd-relative


def test_llama2_round_has_the_paper_numbers():
    cfg = load_config(RLHFRoundConfig, ROOT / "recipes/llama2-7b/rlhf_round.yaml")
    p = cfg.ppo
    assert (p.batch_prompts, p.minibatch, p.epochs, p.beta, p.clip) == (512, 64, 1, 0.01, 0.2)
    assert (p.optim.lr, tuple(p.optim.betas), p.optim.eps, p.optim.weight_decay, p.optim.grad_clip) == \
        (1e-6, (0.9, 0.95), 1e-5, 0.1, 1.0)
    assert p.reward_transform == "whiten_logit" and cfg.reward.safety_threshold == 0.15
    assert cfg.rs.pool_from_round == 3 and cfg.rs.deepspeed.enabled and cfg.rs.deepspeed.zero_stage == 3
    assert cfg.ppo.deepspeed.enabled and cfg.ppo.deepspeed.zero_stage == 3 and not cfg.ppo.lora.enabled


def test_quickstart_round_reads_the_quickstart_runs():
    cfg = load_config(RLHFRoundConfig, ROOT / "recipes/quickstart/rlhf_round.yaml")
    assert cfg.start == "runs/quickstart/sft"
    assert (cfg.reward.helpful, cfg.reward.safety) == ("runs/quickstart/reward_helpful", "runs/quickstart/reward_safety")
    assert Path(cfg.data.prompts).is_file() and Path(cfg.data.heldout).is_file()


def test_dry_run_lists_every_missing_input(tmp_path, monkeypatch, capsys):
    from chatalign.rlhf.cli_commands import cmd_round

    monkeypatch.chdir(tmp_path)  # no runs/ here
    with pytest.raises(ConfigError) as err:
        cmd_round(str(ROOT / "recipes/quickstart/rlhf_round.yaml"), [], dry_run=True)
    msg = str(err.value)
    for key in ("start: runs/quickstart/sft", "reward.helpful: runs/quickstart/reward_helpful",
                "reward.safety: runs/quickstart/reward_safety"):
        assert key in msg
    assert "relative to the current directory" in msg and str(tmp_path) in msg


def test_dry_run_prints_the_round_plan(rlhf_files, tmp_path, capsys):
    import yaml

    from chatalign.rlhf.cli_commands import cmd_ppo

    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({
        "stage": "rlhf", "start": str(rlhf_files / "policy"), "output_dir": str(tmp_path / "out"),
        "reward": {"helpful": str(rlhf_files / "rm_helpful"), "safety": str(rlhf_files / "rm_safety")},
        "data": {"prompts": "../" + tmp_path.name + "/p.jsonl"}}))
    (tmp_path / "p.jsonl").write_text((rlhf_files / "prompts.jsonl").read_text())
    assert cmd_ppo(str(recipe), ["ppo.beta=0.05"], dry_run=True) == 0
    out = capsys.readouterr().out
    assert "mode: ppo" in out and "beta: 0.05" in out and '"round": 1' in out and '"train_prompts": 8' in out
    assert "off (no data.heldout)" in out
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


def test_config_rejects_impossible_batches():
    with pytest.raises(ValueError, match="multiple of ppo.minibatch"):
        RLHFRoundConfig.model_validate({"start": "x", "reward": {"helpful": "h", "safety": "s"},
                                        "data": {"prompts": "p"}, "ppo": {"batch_prompts": 10, "minibatch": 4}})
