"""The llama2-7b pipeline recipe has the paper's five-round shape with the loop in it (sec. 3.2.1): before each
round from V2 on, fresh comparisons from the latest round's model, both reward models retrained on every batch
so far, and the round scored by them; V5 is PPO on top of rejection sampling."""

from pathlib import Path

from chatalign.pipeline.config import load_pipeline

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "llama2-7b" / "pipeline.yaml"


def test_five_rounds_each_after_a_fresh_batch_and_retrained_reward_models(tmp_path):
    cfg = load_pipeline(RECIPE, [f"output_dir={tmp_path}"])
    steps = {s.name: s for s in cfg.steps}
    order = [s.name for s in cfg.steps]
    assert [n for n in order if n.startswith("rlhf_v")] == [f"rlhf_v{n}" for n in range(1, 6)]
    for n in range(2, 6):
        prefs, rh, rs, rnd = (steps[f"prefs_v{n}"], steps[f"reward_helpful_v{n}"], steps[f"reward_safety_v{n}"],
                              steps[f"rlhf_v{n}"])
        assert order.index(f"rlhf_v{n - 1}") < order.index(prefs.name) < order.index(rh.name) < order.index(rnd.name)
        assert prefs.set["model.name"] == f"${{runs.rlhf_v{n - 1}}}"
        for rm in (rh, rs):  # every batch so far, and the newest one's held-out pairs in its evaluation
            batches = [src["path"] for src in rm.set["data.sources"] if "prefs_v" in src["path"]]
            assert batches == [f"${{runs.prefs_v{k}}}/preferences.jsonl" for k in range(2, n + 1)]
            assert {"path": f"${{runs.prefs_v{n}}}/preferences_heldout.jsonl", "name": f"batch_v{n}"} in \
                rm.set["data.eval"]
        expanded = cfg.expand(rnd)
        assert expanded["reward.helpful"] == str(cfg.step_dir(f"reward_helpful_v{n}"))
        assert expanded["reward.safety"] == str(cfg.step_dir(f"reward_safety_v{n}"))
        assert expanded["start"] == str(cfg.step_dir(f"rlhf_v{n - 1}"))
    assert cfg.expand(steps["rlhf_v5"])["mode"] == "rs+ppo"
    assert all(cfg.expand(steps[f"rlhf_v{n}"])["mode"] == "rs" for n in range(1, 5))
