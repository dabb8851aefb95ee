"""Held-out evaluation of a chat model: NLL of reference answers and rule-checked greedy answers."""

from __future__ import annotations

import math
from collections import defaultdict


def load_heldout(path: str, limit: int):
    from chatalign.data_schemas import load_records

    rows = load_records(path, "prompt").records
    return rows[:limit] if limit else rows


def reference_nll(model, tokenizer, prompts, batch_tokens: int = 4096) -> float | None:
    """Mean per-token NLL of the `reference` answers given their prompts (packed, no cross attention)."""
    import torch

    from chatalign.text.masks import encode_chat
    from chatalign.text.packing import collate_rows, pack_examples
    from chatalign.training.lm_loss import PackedLMLoss

    examples = []
    for p in prompts:
        if not p.reference:
            continue
        msgs = [{"role": m.role, "content": m.content} for m in p.messages]
        msgs.append({"role": "assistant", "content": p.reference})
        enc = encode_chat(tokenizer, msgs, train_on="last_assistant")
        if enc.n_trained:
            examples.append((enc.input_ids, enc.loss_mask))
    if not examples:
        return None
    loss_fn = PackedLMLoss(model)
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for row in pack_examples(examples, max(batch_tokens, max(len(e[0]) for e in examples))):
            total += float(loss_fn(**collate_rows([row])))
            count += row.n_trained
    model.train(was_training)
    return total / max(1, count)


def checked_answers(model, tokenizer, prompts, max_new_tokens: int, batch_size: int) -> dict:
    """Greedy answers scored by each prompt's rule `check`; pass rate overall and per task tag."""
    from chatalign.judges.rules import run_check
    from chatalign.rollout.engine import generate_rollouts
    from chatalign.text.masks import encode_prompt

    rows = [p for p in prompts if p.check]
    if not rows:
        return {"pass_rate": None, "per_task": {}, "samples": []}
    ids = [encode_prompt(tokenizer, [{"role": m.role, "content": m.content} for m in p.messages]) for p in rows]
    outs = generate_rollouts(model, tokenizer, ids, max_new_tokens=max_new_tokens, temperature=0.0,
                             batch_size=batch_size, return_logprobs=False)
    by_task: dict[str, list[bool]] = defaultdict(list)
    samples = []
    for r in outs:
        p = rows[r.prompt_index]
        ok = bool(run_check(r.text, p.check))
        by_task[(p.tags or ["all"])[0]].append(ok)
        samples.append({"id": p.id, "prompt": p.messages[-1].content, "answer": r.text, "pass": ok})
    samples.sort(key=lambda s: str(s["id"]))
    flat = [x for v in by_task.values() for x in v]
    return {"pass_rate": sum(flat) / len(flat),
            "per_task": {k: sum(v) / len(v) for k, v in sorted(by_task.items())}, "samples": samples}


def evaluate_model(model, tokenizer, prompts, max_new_tokens: int, batch_size: int) -> dict:
    nll = reference_nll(model, tokenizer, prompts)
    res = checked_answers(model, tokenizer, prompts, max_new_tokens, batch_size)
    res["reference_nll"] = nll
    res["reference_ppl"] = math.exp(nll) if nll is not None else None
    return res
