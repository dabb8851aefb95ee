"""`chatalign plan` for a preference batch, alone and as steps of the llama2-7b pipeline's loop."""

from pathlib import Path

from chatalign.cli.main import main

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_the_batch_plans_its_answer_generation(capsys):
    assert main(["plan", "--config", str(RECIPES / "quickstart" / "prefs.yaml"), "--gpus", "1"]) == 0
    out = capsys.readouterr().out
    assert "phase answers: one process" in out and "KV cache" in out and "FITS" in out


def test_the_llama2_pipeline_plans_every_batch_of_its_loop(capsys):
    main(["plan", "--config", str(RECIPES / "llama2-7b" / "pipeline.yaml"), "--gpus", "16"])
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("  prefs_v")]
    assert [r[0] for r in rows] == [f"prefs_v{n}" for n in range(2, 6)]
    assert all(r[1] == "prefs" and r[4] == "yes" for r in rows), rows
