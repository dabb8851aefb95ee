"""The general suite: does the model keep what the base model could do, on requests written elsewhere?

(a) NLL per token of well-written answers (general.jsonl, conversations whose last message is the reference):
    the assistant tokens of the last turn only, chat template applied, packed padding-free forwards; lower is
    better. A model that makes good answers less likely than the base model did has lost something.
(b) System instructions kept (system_instructions.jsonl): a system message with an instruction of a kind never
    trained (lowercase, end with a question, quoted, one sentence, Dutch or Swedish), then an everyday request;
    greedy answers of `max_new_tokens` tokens, each checked by its rule (chatalign.judges.rules); per kind and
    overall. An answer cut at max_new_tokens is checked as it is (its share is in the note).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from chatalign.evaluation.suite import metric, share

GENERAL_FILE = "general.jsonl"
INSTRUCTIONS_FILE = "system_instructions.jsonl"


def _first(records: list, limit: int | None) -> list:
    return records[:limit] if limit else records


def answer_nll(model, tokenizer, conversations, batch_tokens: int = 4096, progress: bool = False
               ) -> tuple[float | None, int]:
    """(mean NLL per trained token, trained tokens) of the last assistant answer of each conversation."""
    import torch
    from tqdm.auto import tqdm

    from chatalign.text.masks import as_message_dicts, encode_chat
    from chatalign.text.packing import collate_rows, pack_examples
    from chatalign.training.lm_loss import PackedLMLoss

    examples = []
    for conv in conversations:
        enc = encode_chat(tokenizer, as_message_dicts(conv.messages), train_on="last_assistant")
        if enc.n_trained:
            examples.append((enc.input_ids, enc.loss_mask))
    if not examples:
        return None, 0
    rows = pack_examples(examples, max(batch_tokens, max(len(ids) for ids, _ in examples)))
    loss_fn = PackedLMLoss(model)
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for row in tqdm(rows, desc="NLL of reference answers", unit="row", disable=not progress):
                total += float(loss_fn(**collate_rows([row])))
                count += row.n_trained
    finally:
        model.train(was_training)
    return total / count, count


def greedy_answers(model, tokenizer, prompts, max_new_tokens: int, batch_size: int, progress: bool = False
                   ) -> list[tuple[str, bool]]:
    """(text, finished) of a greedy answer to each Prompt record, in order."""
    from chatalign.rollout.engine import generate_rollouts
    from chatalign.text.masks import as_message_dicts, encode_prompt

    if not prompts:
        return []
    ids = [encode_prompt(tokenizer, as_message_dicts(p.messages)) for p in prompts]
    outs = generate_rollouts(model, tokenizer, ids, max_new_tokens=max_new_tokens, temperature=0.0,
                             batch_size=batch_size, return_logprobs=False, progress=progress)
    return [(r.text, r.finished) for r in sorted(outs, key=lambda r: r.prompt_index)]


def instruction_metrics(prompts, answers: list[tuple[str, bool]]) -> tuple[list[dict], list[dict]]:
    """(metrics: kept overall and per kind, samples) from the answers to the system-instruction prompts."""
    from chatalign.judges.rules import run_check

    by_kind: dict[str, list[bool]] = defaultdict(list)
    samples = []
    for p, (text, finished) in zip(prompts, answers, strict=True):
        kind = p.tags[0] if p.tags else p.check.get("type", "unknown")
        ok = bool(run_check(text, p.check))
        by_kind[kind].append(ok)
        samples.append({"id": p.id, "kind": kind, "prompt": p.messages[-1].content, "answer": text,
                        "finished": finished, "kept": ok})
    flat = [ok for v in by_kind.values() for ok in v]
    cut = sum(not s["finished"] for s in samples)
    metrics = [metric("system_instructions_kept", "system instructions of held-out kinds kept", share(flat),
                      len(flat), higher_is_better=True, unit="%", judge="rules",
                      note=f"{cut} of {len(flat)} answers cut at max_new_tokens" if cut else None)]
    for kind in sorted(by_kind):
        metrics.append(metric(f"system_kept_{kind}", f"system instruction kept: {kind}", share(by_kind[kind]),
                              len(by_kind[kind]), higher_is_better=True, unit="%", judge="rules"))
    return metrics, samples


class GeneralSuite:
    name = "general"

    def data_files(self, cfg) -> list[Path]:
        return [cfg.data_file(GENERAL_FILE), cfg.data_file(INSTRUCTIONS_FILE)]

    def settings(self, cfg) -> dict:
        return cfg.general.model_dump(mode="json")

    def run(self, model, tokenizer, cfg, progress: bool) -> dict:
        from chatalign.data_schemas import load_records

        g = cfg.general
        conversations = _first(load_records(cfg.data_file(GENERAL_FILE), "conversation").records, g.max_answers)
        nll, tokens = answer_nll(model, tokenizer, conversations, g.batch_tokens, progress)
        prompts = [p for p in load_records(cfg.data_file(INSTRUCTIONS_FILE), "prompt").records if p.check]
        prompts = _first(prompts, g.max_instructions)
        answers = greedy_answers(model, tokenizer, prompts, g.max_new_tokens, g.batch_size, progress)
        kept, samples = instruction_metrics(prompts, answers)
        nll_metric = metric("general_answer_nll", "NLL per token of well-written answers (everyday requests)", nll,
                            len(conversations), higher_is_better=False, unit="nats", judge="nll",
                            note=f"{tokens} answer tokens")
        return {"metrics": [nll_metric, *kept], "samples": samples}
