"""One model on lm-eval tasks: `simple_evaluate` on an `HFLM` over the model directory, the scores read back as
rows, each model's result kept in the evaluation cache so the base model is evaluated once per task set."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from chatalign.errors import UserError

log = logging.getLogger(__name__)
MISSING_EXTRA = "lm-evaluation-harness is not installed: pip install 'chatalign[harness]' (or pip install lm-eval)"


@dataclass(frozen=True)
class HarnessSettings:
    """What changes a score: the tasks, how many documents, few-shot examples, precision and seeds."""
    tasks: tuple  # names or resolved task config dicts (chatalign.harness.tasks)
    limit: int | None = None
    num_fewshot: int | None = None
    batch_size: int = 8
    dtype: str = "float32"
    device: str = "cpu"
    seed: int = 0
    include_path: str | None = None


def import_lm_eval():
    try:
        import lm_eval
    except ImportError:
        raise UserError(MISSING_EXTRA) from None
    return lm_eval


def score_rows(results: dict, higher: dict, n_samples: dict) -> list[dict]:
    """lm-eval's `results` ({task: {"acc,none": 0.5, "acc_stderr,none": 0.1, ...}}) as one row per task, metric
    and filter: {task, metric, filter, value, stderr, n, higher_is_better}."""
    rows = []
    for task, values in results.items():
        for key, value in values.items():
            metric, _, filt = key.partition(",")
            if not filt or metric.endswith("_stderr") or not isinstance(value, (int, float)):
                continue
            stderr = values.get(f"{metric}_stderr,{filt}")
            n = (n_samples.get(task) or {}).get("effective")
            rows.append({"task": task, "metric": metric, "filter": filt, "value": float(value),
                         "stderr": float(stderr) if isinstance(stderr, (int, float)) else None, "n": n,
                         "higher_is_better": (higher.get(task) or {}).get(metric)})
    return rows


def _data_files(tasks: tuple) -> list[Path]:
    files: list[Path] = []

    def visit(value):
        if isinstance(value, str) and Path(value).is_file():
            files.append(Path(value))
        elif isinstance(value, (list, tuple)):
            for v in value:
                visit(v)
        elif isinstance(value, dict):
            for v in value.values():
                visit(v)

    for task in tasks:
        if isinstance(task, dict):
            visit((task.get("dataset_kwargs") or {}).get("data_files"))
    return files


def cache_key(model: str, settings: HarnessSettings) -> str:
    from chatalign.evaluation.cache import data_hash, model_fingerprint, result_key

    fields = asdict(settings)
    fields["tasks"] = json.loads(json.dumps(list(settings.tasks), sort_keys=True, default=str))
    del fields["batch_size"], fields["device"]  # they change the speed, not the scores
    return result_key("harness", model_fingerprint(model), fields, data_hash(_data_files(settings.tasks)))


def evaluate_model(model: str, settings: HarnessSettings, cache=None) -> dict:
    """{"model", "rows", "seconds", "lm_eval_version"} of one model (a run directory, HF directory or embedded)."""
    from chatalign.models import resolve_model_path

    key = cache_key(model, settings) if cache is not None else None
    if key and (hit := cache.get("harness", key)):
        log.info("harness: %s from the cache", model)
        return hit
    lm_eval = import_lm_eval()
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    path = resolve_model_path(model)
    start = time.perf_counter()
    lm = HFLM(pretrained=path, device=settings.device, dtype=settings.dtype, batch_size=settings.batch_size,
              trust_remote_code=False)
    manager = TaskManager(include_path=settings.include_path) if settings.include_path else TaskManager()
    seed = settings.seed
    try:
        out = lm_eval.simple_evaluate(model=lm, tasks=list(settings.tasks), num_fewshot=settings.num_fewshot,
                                      limit=settings.limit, task_manager=manager, log_samples=False,
                                      random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed,
                                      fewshot_random_seed=seed, bootstrap_iters=1000)
    except (KeyError, ValueError) as exc:  # an unknown task name, a task config lm-eval cannot use
        raise UserError(f"lm-eval could not run the tasks: {type(exc).__name__}: {exc}") from None
    except OSError as exc:  # a data file missing, or a Hub dataset neither cached nor reachable
        raise UserError(f"lm-eval could not read a task's data ({type(exc).__name__}: {exc}); a Hub task needs "
                        "its dataset in the local `datasets` cache when the Hub is not reachable") from None
    result = {"model": str(model), "model_dir": path, "lm_eval_version": getattr(lm_eval, "__version__", None),
              "rows": score_rows(out["results"], out.get("higher_is_better") or {}, out.get("n-samples") or {}),
              "seconds": round(time.perf_counter() - start, 1)}
    if key:
        cache.put("harness", key, result)
    return result
