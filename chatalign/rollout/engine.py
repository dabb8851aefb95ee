"""The rollout (generation) engine shared by rejection sampling, PPO, GAtt and safety distillation.

`generate_rollouts` samples K answers for each prompt with our own KV-cached decode loop (see
`chatalign.rollout.batch` for why it beats `generate` on throughput), and returns for every answer the policy's
per-token log-probabilities, so PPO needs no second forward pass to know log pi_old.
`chatalign.rollout.logprobs.sequence_logprobs` scores given answers under a model (reference-model KL).

Torch and transformers are imported inside the functions: the CLI imports this module for cheap commands.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chatalign.errors import ConfigError, DataError
from chatalign.rollout.inference import inference

__all__ = ["Rollout", "generate_rollouts", "default_stop_token_ids"]

log = logging.getLogger(__name__)

CHATML_END = "<|im_end|>"


@dataclass
class Rollout:
    """One sampled answer.

    `response_ids` runs up to and including the stop token when one was generated (`finished`), else it is
    `max_new_tokens` long. `logprobs[i]` is log pi(response_ids[i] | prompt, response_ids[:i]) under the
    model's own next-token distribution: log-softmax of the raw logits at temperature 1, before any top-p
    truncation, whatever temperature/top_p the token was drawn with (PPO's ratio and the KL penalty need the
    unmodified policy). It comes from the batched, KV-cached forward that chose the token, and matches a fresh
    full forward pass to about 1e-5 in float32. None when `return_logprobs=False`.
    """

    prompt_index: int
    sample_index: int
    prompt_ids: list[int]
    response_ids: list[int]
    text: str
    logprobs: list[float] | None
    finished: bool


def default_stop_token_ids(tokenizer) -> list[int]:
    """The tokenizer's eos id, plus `<|im_end|>` where the vocabulary has it (ChatML end of turn)."""
    ids = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    vocab = tokenizer.get_vocab()
    if CHATML_END in vocab:
        ids.append(int(vocab[CHATML_END]))
    return sorted(set(ids))


def _check_arguments(prompt_ids, num_samples, max_new_tokens, temperature, top_p, batch_size) -> None:
    if num_samples < 1:
        raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if not 0 < top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1], got {top_p}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    for i, p in enumerate(prompt_ids):
        if len(p) == 0:
            raise DataError(f"prompt {i} is empty: a rollout needs at least one prompt token")


def decode_pad_id(tokenizer, stop_token_ids: list[int]) -> int:
    """The id that pads decode batches: the tokenizer's pad token, else a stop token (never attended to)."""
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    return stop_token_ids[0] if stop_token_ids else 0


def sampling_generator(device, seed: int | None, temperature: float):
    """A generator seeded with `seed` for sampled decoding; None for greedy decoding or without a seed."""
    import torch

    if seed is None or temperature <= 0:
        return None
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def generate_rollouts(model, tokenizer, prompt_ids: list[list[int]], *, num_samples: int = 1,
                      max_new_tokens: int = 128, temperature: float = 1.0, top_p: float = 1.0,
                      batch_size: int = 16, seed: int | None = None, stop_token_ids: list[int] | None = None,
                      return_logprobs: bool = True, progress: bool = False, compile: bool = False,
                      static_cache: bool | None = None, stats: dict | None = None) -> list[Rollout]:
    """Sample `num_samples` answers per prompt; return them ordered by (prompt_index, sample_index).

    temperature == 0 is greedy decoding (then all K samples of a prompt are the same). With a `seed`, the same
    call (same prompts, arguments and batch_size) returns the same rollouts; a different batch_size draws
    differently. `batch_size` is the number of rows decoded together; finished rows leave the batch and waiting
    prompts take their place. `compile=True` (CUDA only) decodes fixed batches on a static cache with a
    torch.compile'd step; `static_cache=True` takes that loop without compiling (defaults to `compile`).
    `stats`, if given, receives work counters: prefill_calls (forwards), prefill_tokens (padded), decode_steps,
    decode_row_steps (rows carried by the decode steps; a finished row carried along counts too).
    """
    from chatalign.rollout.sampling import TokenRecorder

    _check_arguments(prompt_ids, num_samples, max_new_tokens, temperature, top_p, batch_size)
    prompts = [[int(t) for t in p] for p in prompt_ids]
    if not prompts:
        return []
    use_static = compile if static_cache is None else static_cache
    if compile and not use_static:
        raise ConfigError("compile=True needs the static-cache loop (leave static_cache unset or True)")
    stops = default_stop_token_ids(tokenizer) if stop_token_ids is None else [int(t) for t in stop_token_ids]
    device = next(model.parameters()).device
    items = [(p, s) for p in range(len(prompts)) for s in range(num_samples)]
    bar = _progress_bar(len(items)) if progress else None
    recorder = TokenRecorder(len(items), max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                             stop_token_ids=stops, generator=sampling_generator(device, seed, temperature),
                             return_logprobs=return_logprobs, device=device, progress=bar)
    try:
        _decode(model, prompts, items, recorder, batch_size=batch_size, max_new_tokens=max_new_tokens,
                pad_id=decode_pad_id(tokenizer, stops), device=device, static=use_static, compile=compile)
    finally:
        if bar is not None:
            bar.close()
        if stats is not None:
            stats.update(recorder.stats)
    texts = tokenizer.batch_decode(recorder.responses, skip_special_tokens=True)
    return [Rollout(prompt_index=p, sample_index=s, prompt_ids=list(prompts[p]),
                    response_ids=recorder.responses[w], text=texts[w],
                    logprobs=recorder.logprobs[w] if return_logprobs else None, finished=recorder.finished[w])
            for w, (p, s) in enumerate(items)]


def _progress_bar(total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="rollouts", unit="answer")


def _decode(model, prompts: list[list[int]], items: list[tuple[int, int]], recorder, *, batch_size: int,
            max_new_tokens: int, pad_id: int, device, static: bool, compile: bool) -> None:
    """Run the decode loop (static cache or dynamic batch) over every (prompt, sample) item into `recorder`."""
    # Longest prompts first, the K samples of a prompt side by side: batches of similar length pad little,
    # and a prefill can serve all samples of a prompt at once.
    order = sorted(range(len(items)), key=lambda w: (-len(prompts[items[w][0]]), w))
    with inference(model):
        if static:
            from chatalign.rollout.static import decode_static

            decode_static(model, prompts, items, order, recorder, batch_size=batch_size,
                          max_new_tokens=max_new_tokens, pad_id=pad_id, device=device, compile=compile)
        else:
            from chatalign.rollout.batch import decode_dynamic

            decode_dynamic(model, prompts, items, order, recorder, batch_size=batch_size, pad_id=pad_id,
                           device=device)
