"""Running suites on the three models of a comparison (base, before, after), each model once, results cached.

    results = evaluate_models(cfg, [GeneralSuite()], {"base": "embedded", "before": start, "after": run_dir},
                              cache_dir=..., progress=True)
    rows = rows_from_results("general", {label: r["general"] for label, r in results.items()})

A model whose results are all in the cache is not even loaded. The time each suite took on each model (process
CPU seconds and wall seconds) is kept in its result, for the cost table of the report.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from pathlib import Path

from chatalign.evaluation.cache import (
    ResultCache,
    data_hash,
    default_cache_dir,
    model_fingerprint,
    result_key,
)
from chatalign.evaluation.suite import LABELS, Suite

log = logging.getLogger(__name__)


def load_eval_model(name: str, dtype: str = "auto"):
    """(model in eval mode, tokenizer) of a model name, run directory or HF directory."""
    from chatalign.models import load_causal_lm, load_tokenizer

    tokenizer = load_tokenizer(name)
    model = load_causal_lm(name, dtype).eval()
    model.config.use_cache = True  # generation; the packed NLL forward asks for no cache itself
    return model, tokenizer


def _timed(suite: Suite, model, tokenizer, cfg, progress: bool) -> dict:
    cpu, wall = time.process_time(), time.perf_counter()
    result = suite.run(model, tokenizer, cfg, progress)
    result["seconds"] = {"cpu": round(time.process_time() - cpu, 1), "wall": round(time.perf_counter() - wall, 1)}
    return result


def evaluate_model(name: str, suites: list[Suite], cfg, cache: ResultCache, progress: bool = True) -> dict[str, dict]:
    """{suite name: result} for one model: from the cache where the key matches, else computed and stored."""
    fingerprint = model_fingerprint(name)
    keys = {s.name: result_key(s.name, fingerprint, s.settings(cfg), data_hash(s.data_files(cfg))) for s in suites}
    results = {s.name: cache.get(s.name, keys[s.name]) for s in suites}
    todo = [s for s in suites if results[s.name] is None]
    if not todo:
        return results
    log.info("independent evaluation of %s: %s", name, ", ".join(s.name for s in todo))
    model, tokenizer = load_eval_model(name, cfg.dtype)
    try:
        for suite in todo:
            result = _timed(suite, model, tokenizer, cfg, progress)
            result.update({"suite": suite.name, "model": str(name), "fingerprint": fingerprint,
                           "settings": suite.settings(cfg)})
            cache.put(suite.name, keys[suite.name], result)
            results[suite.name] = result
    finally:
        del model
        gc.collect()
    return results


def evaluate_models(cfg, suites: list[Suite], models: dict[str, str | None], cache_dir: str | os.PathLike,
                    progress: bool = True) -> dict[str, dict[str, dict]]:
    """{label: {suite: result}} for the labelled models ({"base": name, "before": name, "after": name}; a None
    name is a model not measured). A model named twice is evaluated once (the cache serves the second)."""
    cache = ResultCache(cache_dir)
    out: dict[str, dict[str, dict]] = {}
    for label in LABELS:
        name = models.get(label)
        if name is not None:
            out[label] = evaluate_model(str(name), suites, cfg, cache, progress)
    return out


def by_suite(results: dict[str, dict[str, dict]], suite: str) -> dict[str, dict | None]:
    """{label: that suite's result} from evaluate_models' {label: {suite: result}}."""
    return {label: per_suite.get(suite) for label, per_suite in results.items()}


def cache_dir_for(cfg, run_dir: str | os.PathLike | None) -> Path:
    return Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir(run_dir)


def seconds_table(results: dict[str, dict[str, dict]]) -> list[dict]:
    """[{suite, model, cpu, wall}] of the results computed (a cached result keeps the time it took then)."""
    rows, seen = [], set()
    for per_suite in results.values():
        for suite, result in per_suite.items():
            if result and (suite, result.get("fingerprint")) not in seen:
                seen.add((suite, result.get("fingerprint")))
                rows.append({"suite": suite, "model": result.get("model"), **(result.get("seconds") or {})})
    return rows
