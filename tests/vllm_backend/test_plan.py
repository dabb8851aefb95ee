"""`chatalign plan` with `generation.backend: vllm`: every generation phase of the round counts the engine's
share of the GPU (generation.memory_share), colocated with the models the phase holds."""

from pathlib import Path

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "quickstart" / "rlhf_round.yaml"


def test_the_round_plan_reserves_the_engines_share_in_each_generation_phase(capsys):
    from chatalign.cli.main import main

    assert main(["plan", "--config", str(RECIPE), "--gpus", "1", "--gpu-memory", "80GB", "mode=rs+ppo",
                 "generation.backend=vllm", "generation.memory_share=0.25"]) == 0
    out = capsys.readouterr().out
    phases = out.split("\nphase ")[1:]
    with_engine = [p.split(":")[0] for p in phases if "vLLM engine (generation.memory_share)" in p]
    assert with_engine == ["RS sampling", "PPO generation", "round evaluation"]
    assert all("20.00  0.25 x 80 GiB" in p for p in phases if "vLLM engine" in p)
    assert not any("  KV cache  " in p for p in phases)  # the native engine's term, replaced
