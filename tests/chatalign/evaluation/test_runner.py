"""Each model evaluated once: results cached by model content, suite settings and data; independent.json written
with base / before / after rows by the stage hook."""

from __future__ import annotations

import json
import shutil

import pytest

from chatalign.evaluation import runner
from chatalign.evaluation.cache import ResultCache, model_fingerprint
from chatalign.evaluation.config import IndependentEvalConfig
from chatalign.evaluation.general import GeneralSuite
from chatalign.evaluation.record import read_independent
from chatalign.evaluation.stage_hook import SAMPLES_FILE, run_independent


@pytest.fixture
def loads(monkeypatch):
    """Counts the models the runner loads (the real loader still runs)."""
    seen = []
    real = runner.load_eval_model

    def counting(name, dtype="auto"):
        seen.append(name)
        return real(name, dtype)

    monkeypatch.setattr(runner, "load_eval_model", counting)
    return seen


def config(indep_dir, tmp_path, **general):
    return IndependentEvalConfig(enabled=True, data_dir=str(indep_dir), cache_dir=str(tmp_path / "cache"),
                                 general={"max_new_tokens": 4, **general})


def test_fingerprint_follows_the_content(tiny_dirs, tmp_path):
    copy = shutil.copytree(tiny_dirs[0], tmp_path / "copy")
    assert model_fingerprint(str(copy)) == model_fingerprint(str(tiny_dirs[0]))
    assert model_fingerprint(str(tiny_dirs[1])) != model_fingerprint(str(tiny_dirs[0]))
    assert model_fingerprint("some-org/not-here") == "name:some-org/not-here"


def test_each_model_once_and_cached(tiny_dirs, indep_dir, tmp_path, loads):
    cfg = config(indep_dir, tmp_path)
    models = {"base": str(tiny_dirs[0]), "before": str(tiny_dirs[0]), "after": str(tiny_dirs[1])}
    first = runner.evaluate_models(cfg, [GeneralSuite()], models, cfg.cache_dir, progress=False)
    assert loads == [str(tiny_dirs[0]), str(tiny_dirs[1])]  # base and before are one model
    assert first["base"]["general"] == first["before"]["general"]
    again = runner.evaluate_models(cfg, [GeneralSuite()], models, cfg.cache_dir, progress=False)
    assert len(loads) == 2 and again == first  # all from the cache
    assert len(list((tmp_path / "cache").glob("general-*.json"))) == 2
    changed = config(indep_dir, tmp_path, max_new_tokens=5)
    runner.evaluate_models(changed, [GeneralSuite()], {"base": str(tiny_dirs[0])}, cfg.cache_dir, progress=False)
    assert len(loads) == 3  # another setting: computed again
    (indep_dir / "general.jsonl").write_text((indep_dir / "general.jsonl").read_text().splitlines()[0] + "\n")
    runner.evaluate_models(changed, [GeneralSuite()], {"base": str(tiny_dirs[0])}, cfg.cache_dir, progress=False)
    assert len(loads) == 4  # other data: computed again


def test_a_broken_cache_file_is_computed_again(tmp_path):
    cache = ResultCache(tmp_path)
    cache.path("general", "k").write_text("{half")
    assert cache.get("general", "k") is None
    cache.put("general", "k", {"metrics": []})
    assert cache.get("general", "k") == {"metrics": []}


def test_stage_hook_writes_the_record(tiny_dirs, indep_dir, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cfg = config(indep_dir, tmp_path)
    path = run_independent(cfg.model_copy(update={"base_model": str(tiny_dirs[0])}), run_dir, str(tiny_dirs[1]),
                           str(tiny_dirs[0]), ["general"], progress=False)
    record = read_independent(run_dir)
    assert path == run_dir / "independent.json" and record.start_model == str(tiny_dirs[0])
    nll = next(r for r in record.rows if r.key == "general_answer_nll")
    assert nll.independent.base == nll.independent.before != nll.independent.after
    assert nll.independent.n == 3 and nll.judge == "nll" and not nll.higher_is_better
    samples = json.loads((run_dir / SAMPLES_FILE).read_text())
    assert {s["suite"] for s in samples["seconds"]} == {"general"} and len(samples["seconds"]) == 2
    assert run_independent(cfg.model_copy(update={"enabled": False}), tmp_path, "x", "y", ["general"]) is None


def test_missing_data_dir_is_a_config_error(tmp_path):
    from chatalign.errors import ConfigError

    cfg = IndependentEvalConfig(enabled=True, data_dir=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="independent.data_dir"):
        GeneralSuite().data_files(cfg)
