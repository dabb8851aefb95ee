"""The GPU decode loop: fixed batches on a StaticCache, the decode step optionally torch.compile'd.

A compiled decode step wants every step to have the same shapes, so nothing here changes shape inside a
batch: rows that finish stay in place (their tokens are ignored) and the 2D mask is allocated at the cache's
full length and filled one column per step. The loop therefore cannot drop or refill rows; it stops a batch
when all its rows are done. On CPU a static cache gains nothing over `decode_dynamic` (the step is bound by
reading weights); the eager path exists so that the tests can check this loop against `generate` on CPU.
The compiled path runs only on CUDA and is not exercised by the test suite (no GPU in CI).
"""

from __future__ import annotations

import logging

import torch

from chatalign.rollout.batch import cache_keyword, left_pad, positions_from_mask, supports_logits_to_keep
from chatalign.rollout.sampling import TokenRecorder

log = logging.getLogger(__name__)

# Cache lengths are rounded up to this, so that batches with similar prompt lengths reuse one compiled graph.
CACHE_LENGTH_QUANTUM = 128


def compiled_step(model, enabled: bool):
    """The decode-step callable: `model` itself, or on CUDA a torch.compile'd forward with CUDA graphs."""
    if not enabled:
        return model
    if not torch.cuda.is_available() or next(model.parameters()).device.type != "cuda":
        log.warning("compile=True needs a CUDA model; decoding with an eager static cache instead")
        return model
    # One compiled function per model object: compiling again for each call would recompile every time.
    fn = getattr(model, "_chatalign_compiled_decode", None)
    if fn is None:
        # dynamic=False: the decode shapes are fixed per batch; "reduce-overhead" records CUDA graphs.
        fn = torch.compile(model.forward, mode="reduce-overhead", dynamic=False)
        model._chatalign_compiled_decode = fn
    return fn


def decode_static(model, prompts: list[list[int]], items: list[tuple[int, int]], order: list[int],
                  recorder: TokenRecorder, *, batch_size: int, max_new_tokens: int, pad_id: int, device,
                  compile: bool) -> None:
    from transformers import StaticCache

    step_fn = compiled_step(model, compile)
    cache_kw = cache_keyword(model)
    cache, cache_shape = None, None
    for start in range(0, len(order), batch_size):
        rows: list[int | None] = list(order[start:start + batch_size])
        ids, prompt_mask = left_pad([prompts[items[w][0]] for w in rows], pad_id, device)
        width = prompt_mask.shape[1]
        length = -(-(width + max_new_tokens) // CACHE_LENGTH_QUANTUM) * CACHE_LENGTH_QUANTUM
        # Reuse the cache (same tensors, so a compiled step and its CUDA graph stay valid) when the shape allows.
        if cache_shape == (len(rows), length):
            cache.reset()
        else:
            cache, cache_shape = StaticCache(config=model.config, max_cache_len=length), (len(rows), length)
        mask = torch.zeros((len(rows), length), dtype=torch.bool, device=device)
        mask[:, :width] = prompt_mask
        # The prefill has a different shape at every batch, so it stays eager (as `generate` does).
        kwargs = {"logits_to_keep": 1} if supports_logits_to_keep(model) else {}
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(prompt_mask),
                    use_cache=True, **kwargs, **{cache_kw: cache})
        recorder.stats["prefill_calls"] += 1
        recorder.stats["prefill_tokens"] += ids.numel()
        next_pos = prompt_mask.long().sum(-1, keepdim=True)
        last, alive = recorder.advance(rows, out.logits[:, -1, :])
        for t in range(1, max_new_tokens):
            rows = [w if a else None for w, a in zip(rows, alive)]
            if not any(alive):
                break
            mask[:, width + t - 1] = True
            out = step_fn(input_ids=last.unsqueeze(1), attention_mask=mask, position_ids=next_pos,
                          use_cache=True, **{cache_kw: cache})
            next_pos = next_pos + 1
            recorder.stats["decode_steps"] += 1
            recorder.stats["decode_row_steps"] += len(rows)
            # clone: with CUDA graphs the output buffer is overwritten by the next replay.
            last, alive = recorder.advance(rows, out.logits[:, -1, :].clone())
