"""Rejection sampling fine-tuning (Llama 2 sec. 3.2.3): K answers per prompt, keep the best by R_c, pool
with the best answers of earlier rounds (from round 3 on), fine-tune on the result with the SFT machinery.

Files in the round directory: `data/samples.jsonl` (every sample with its scores), `data/sweep_T<t>.jsonl`
(report-only samples at other temperatures), `data/selected.jsonl` (the best answer per prompt, with its
scores and the round it comes from), `data/rs_train.jsonl` (the same as conversations, what SFT trains on),
`rs_sft/` (the SFT run directory; its `model/` is the rejection-sampling model).

Sampling runs in chunks of prompts, each appended to its file in one write once scored; the seed of a chunk
is derived from (seed, chunk), so a killed round resumes after its last complete chunk and draws the same
samples an unbroken run would. Under several ranks each rank samples and scores its share of every chunk
(with its own seed stream) and rank 0 appends the merged chunk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from chatalign.rlhf.reward_fn import RewardFn, prompt_is_safety, prompt_messages

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- pure logic
def prompt_key(prompt) -> str:
    """A prompt's identity across rounds: its `id`, else a hash of its messages."""
    pid = prompt.get("id") if isinstance(prompt, dict) else getattr(prompt, "id", None)
    if pid:
        return str(pid)
    text = json.dumps(prompt_messages(prompt), sort_keys=True, ensure_ascii=False)
    return "sha1:" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def select_best(samples: Iterable[dict]) -> dict[str, dict]:
    """The sample with the highest `r_combined` per `prompt_key`; on a tie the one seen first stays."""
    best: dict[str, dict] = {}
    for s in samples:
        key = s["prompt_key"]
        if key not in best or s["r_combined"] > best[key]["r_combined"]:
            best[key] = s
    return best


def pool_best(selections: Sequence[dict[str, dict]]) -> dict[str, dict]:
    """Best per prompt across several selections (this round's first: it wins ties); keys of every selection
    are kept, so prompts an earlier round saw and this one did not still train (against forgetting)."""
    pooled: dict[str, dict] = {}
    for sel in selections:
        for key, s in sel.items():
            if key not in pooled or s["r_combined"] > pooled[key]["r_combined"]:
                pooled[key] = s
    return pooled


def pools_this_round(round_number: int, pool_from_round: int | None) -> bool:
    return pool_from_round is not None and round_number >= pool_from_round


# ---------------------------------------------------------------------------------------------- files
def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a kill mid-write; its chunk is incomplete and is redone
    return rows


def write_jsonl_atomic(path: Path, rows: Iterable[dict]) -> None:
    from chatalign.runs import write_text_atomic

    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def append_jsonl(path: Path, rows: Sequence[dict]) -> None:
    from chatalign.runs import fault_disk_full

    path.parent.mkdir(parents=True, exist_ok=True)
    fault_disk_full(path)
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        f.flush()
        os.fsync(f.fileno())


def complete_chunks(path: Path, expected: dict[int, int]) -> tuple[list[dict], set[int]]:
    """Rows of the chunks that are complete (as many rows as `expected[chunk]`); the file is rewritten
    without the rows of an incomplete chunk so that redoing it does not duplicate them."""
    rows = read_jsonl(path)
    counts: dict[int, int] = {}
    for r in rows:
        counts[r["chunk"]] = counts.get(r["chunk"], 0) + 1
    done = {c for c, n in counts.items() if expected.get(c) == n}
    kept = [r for r in rows if r["chunk"] in done]
    if len(kept) != len(rows):
        write_jsonl_atomic(path, kept)
    return kept, done


# ---------------------------------------------------------------------------------------------- sampling
def sample_and_score(generator, tokenizer, prompts: Sequence, reward_fn: RewardFn, out_path: Path, *,
                     num_samples: int, temperature: float, top_p: float, max_new_tokens: int, batch_size: int,
                     seed: int, chunk_prompts: int, progress: bool = False, dist=None) -> list[dict]:
    """K scored samples per prompt, appended to `out_path` chunk by chunk (resumable); all rows returned on
    every rank."""
    from chatalign.rlhf.ppo.batch import derived_seed
    from chatalign.text.masks import encode_prompt
    from chatalign.training.distributed import DistContext

    chunks = [list(range(i, min(len(prompts), i + chunk_prompts))) for i in range(0, len(prompts), chunk_prompts)]
    expected = {c: len(idx) * num_samples for c, idx in enumerate(chunks)}
    dist = dist or DistContext()
    rows, done = dist.run_on_main(lambda: complete_chunks(out_path, expected))
    bar = None
    if progress and dist.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(chunks), initial=len(done), desc=f"rs samples T={temperature:g}", unit="chunk")
    for c, idx in enumerate(chunks):
        if c in done:
            continue
        mine = idx[dist.rank::dist.world_size]
        ids = [encode_prompt(tokenizer, prompt_messages(prompts[i])) for i in mine]
        rollouts = generator.rollouts(tokenizer, ids, num_samples=num_samples, max_new_tokens=max_new_tokens,
                            temperature=temperature, top_p=top_p, batch_size=batch_size,
                            seed=derived_seed(seed, c, int(temperature * 1000)) + dist.rank, return_logprobs=False)
        chunk_prompts_list = [prompts[mine[r.prompt_index]] for r in rollouts]
        new = []
        if rollouts:
            rewards = reward_fn(chunk_prompts_list, [r.text for r in rollouts], [r.response_ids for r in rollouts])
            for r, p, score in zip(rollouts, chunk_prompts_list, rewards.rows()):
                new.append({"chunk": c, "prompt_index": mine[r.prompt_index], "prompt_key": prompt_key(p),
                            "sample_index": r.sample_index, "temperature": temperature,
                            "is_safety": prompt_is_safety(p), "answer": r.text, "n_tokens": len(r.response_ids),
                            "finished": r.finished, **score})
        if dist.initialized:
            from chatalign.training.distributed import gather_rows

            parts = gather_rows(dist, [new], dist.world_size)  # one list per rank
            new = sorted((x for part in parts for x in part), key=lambda r: (r["prompt_index"], r["sample_index"]))
        if dist.is_main:
            append_jsonl(out_path, new)
        rows.extend(new)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return sorted(rows, key=lambda r: (r["prompt_index"], r["sample_index"]))


def scores_per_prompt(rows: Sequence[dict]) -> list[list[float]]:
    by: dict[int, list[float]] = {}
    for r in rows:
        by.setdefault(r["prompt_index"], []).append(r["r_combined"])
    return [by[k] for k in sorted(by)]


# ---------------------------------------------------------------------------------------------- selection
def selected_record(sample: dict, prompt, round_number: int) -> dict:
    return {"prompt_key": sample["prompt_key"], "prompt_id": getattr(prompt, "id", None) if not isinstance(prompt, dict)
            else prompt.get("id"), "messages": prompt_messages(prompt), "is_safety": prompt_is_safety(prompt),
            "answer": sample["answer"], "r_combined": sample["r_combined"], "r_helpful": sample.get("r_helpful"),
            "r_safety": sample.get("r_safety"), "round": round_number,
            "sample_index": sample.get("sample_index")}


def rescore_earlier(files: Sequence[tuple[int, Path]], reward_fn: RewardFn) -> dict[str, dict]:
    """Best answers of earlier rounds, each rescored with this round's reward models (they may have changed
    since) and reduced to the best per prompt across those rounds."""
    rows = [r for _, f in files for r in read_jsonl(f)]
    if not rows:
        return {}
    rewards = reward_fn([{"messages": r["messages"], "is_safety": r["is_safety"]} for r in rows],
                        [r["answer"] for r in rows], [[] for _ in rows])
    for r, score in zip(rows, rewards.rows()):
        r.update(score)
    return select_best(rows)


def training_conversations(selected: Iterable[dict]) -> list[dict]:
    """Conversation records (prompt messages + the selected answer) for the SFT stage."""
    return [{"id": f"rs-{r['prompt_key']}", "messages": [*r["messages"], {"role": "assistant", "content": r["answer"]}]}
            for r in selected]
