"""The model card of an exported run (README.md with Hub metadata), built from what the run directory already
records: the manifest (stage, resolved recipe, input hashes, parent runs, versions, metrics), the lineage of
parent runs, `independent.json` (the figures on the independent sets beside the untouched base model), and the
saved model's config (causal LM or reward model, and how a reward model is read)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from chatalign.runs import holds_adapter_only

EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # what `model.name: embedded` is
MAX_LINEAGE = 12


def run_dir_of(path: str | Path) -> Path | None:
    """The run directory a path names: itself, or the run holding it as `model/` (parents are model dirs)."""
    p = Path(path)
    for candidate in (p, p.parent):
        if (candidate / "manifest.json").is_file():
            return candidate
    return None


def lineage(manifest: dict) -> list[dict]:
    """The chain of runs this one descends from, nearest first: stage, path, config hash; ends at a model that
    is no run (a Hub id, `embedded`, a plain HF directory)."""
    chain, seen = [], set()
    current = manifest
    for _ in range(MAX_LINEAGE):
        parents = current.get("parents") or []
        if not parents:
            start = ((current.get("config") or {}).get("model") or {}).get("name")
            if start and not run_dir_of(start):
                chain.append({"stage": "base model", "path": start, "config_hash": ""})
            break
        run = run_dir_of(parents[0])
        if run is None or str(run) in seen:
            chain.append({"stage": "base model", "path": str(parents[0]), "config_hash": ""})
            break
        seen.add(str(run))
        current = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
        chain.append({"stage": current.get("stage", "?"), "path": str(run), "config_hash": current.get("config_hash", "")})
    return chain


def base_model_id(chain: list[dict]) -> str | None:
    root = chain[-1]["path"] if chain and chain[-1]["stage"] == "base model" else None
    if root == "embedded":
        return EMBEDDED_HUB_ID
    return root if root and "/" in root and not Path(root).exists() else None


def is_reward_model(model_dir: Path) -> bool:
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    return any("SequenceClassification" in a for a in config.get("architectures") or [])


def metrics_table(metrics: dict) -> list[str]:
    rows = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
    if not rows:
        return ["(none recorded)"]
    return ["| metric | value |", "|---|---|"] + [
        f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in rows]


def independent_table(run: Path) -> list[str]:
    path = run / "independent.json"
    if not path.is_file():
        return ["No independent evaluation was recorded for this run."]
    data = json.loads(path.read_text(encoding="utf-8"))
    lines = ["Figures on independent sets (written apart from all training data); `base` is the untouched base "
             "model, `before` the model this stage started from.", "",
             "| suite | metric | base | before | after | n | judge |", "|---|---|---|---|---|---|---|"]
    for row in data.get("rows", []):
        fig = row.get("independent") or {}
        pct = row.get("unit") == "%"
        shown = [("-" if fig.get(k) is None else f"{100 * fig[k]:.1f}%" if pct else f"{fig[k]:.3f}")
                 for k in ("base", "before", "after")]
        lines.append(f"| {row.get('suite')} | {row.get('metric')} | {' | '.join(shown)} | {fig.get('n', '')} "
                     f"| {row.get('judge', '')} |")
    return lines


def usage(repo_id: str, reward: bool) -> list[str]:
    if reward:
        return ["```python", "from transformers import AutoModelForSequenceClassification, AutoTokenizer", "",
                f'rm = AutoModelForSequenceClassification.from_pretrained("{repo_id}")',
                f'tok = AutoTokenizer.from_pretrained("{repo_id}")',
                'messages = [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]',
                "score = rm(**tok.apply_chat_template(messages, return_tensors=\"pt\", return_dict=True))"
                ".logits[0, 0]", "```", "",
                "The head was trained to read the last token of the chat template's text (`reward_read_position: "
                "end_of_chat_template` in config.json), so the usual way above gives the trained score."]
    return ["```python", "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
            f'model = AutoModelForCausalLM.from_pretrained("{repo_id}")',
            f'tok = AutoTokenizer.from_pretrained("{repo_id}")',
            'ids = tok.apply_chat_template([{"role": "user", "content": "Hello!"}], add_generation_prompt=True, '
            'return_tensors="pt")',
            "print(tok.decode(model.generate(ids, max_new_tokens=64)[0, ids.shape[1]:], skip_special_tokens=True))",
            "```"]


def adapter_usage(repo_id: str) -> list[str]:
    return ["A LoRA adapter (PEFT format, trained with `lora.save: adapter`): peft loads its base model (named in "
            "`adapter_config.json`, `base_model_name_or_path`) and puts the adapter on it.", "",
            "```python", "from peft import AutoPeftModelForCausalLM", "from transformers import AutoTokenizer", "",
            f'model = AutoPeftModelForCausalLM.from_pretrained("{repo_id}")  # .merge_and_unload() for whole weights',
            f'tok = AutoTokenizer.from_pretrained("{repo_id}")', "```"]


def model_card(run: Path, repo_id: str) -> str:
    """README.md for the Hub: metadata header, then lineage, data, recipe, metrics, evaluations, how to load."""
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    chain = lineage(manifest)
    adapter = holds_adapter_only(run)
    reward = not adapter and is_reward_model(run / "model")
    stage = manifest.get("stage", "?")
    meta: dict[str, Any] = {"library_name": "peft" if adapter else "transformers", "tags": ["chatalign", stage],
                            "pipeline_tag": "text-classification" if reward else "text-generation"}
    base = base_model_id(chain)
    if base:
        meta["base_model"] = base
    versions = manifest.get("versions") or {}
    lines = ["---", yaml.safe_dump(meta, sort_keys=False).strip(), "---", "", f"# {repo_id}", "",
             f"A {'reward model' if reward else 'chat model'} from the `{stage}` stage of "
             f"chatalign (version {versions.get('chatalign', '?')}, commit "
             f"{manifest.get('git_commit') or '?'}), finished {manifest.get('finished_at', '?')}.", "",
             "## Lineage", "", "| stage | run | config hash |", "|---|---|---|",
             f"| {stage} (this model) | {run.name} | {manifest.get('config_hash', '')} |"]
    lines += [f"| {c['stage']} | {c['path']} | {c['config_hash']} |" for c in chain]
    lines += ["", "## Data", "", "| input | file | sha256 |", "|---|---|---|"]
    lines += [f"| {k} | {Path(v.get('path', '')).name} | {v.get('sha256', '')[:16]} |"
              for k, v in (manifest.get("inputs") or {}).items()] or ["(none recorded)"]
    lines += ["", "## Metrics", "", *metrics_table(manifest.get("metrics") or {}), "",
              "## Evaluation", "", *independent_table(run), "", "## How to load it", "",
              *(adapter_usage(repo_id) if adapter else usage(repo_id, reward)),
              "", "## Recipe", "", "The resolved configuration this run was trained with:", "", "```yaml",
              yaml.safe_dump(manifest.get("config") or {}, sort_keys=False).strip(), "```", ""]
    return "\n".join(lines)
