"""Per-token log-probabilities of given answers under a model: reference-model KL, PPO's old log-probs.

The LM head is applied only at the positions that predict answer tokens. For a 49k vocabulary the full
[batch, length, vocab] logits are the largest tensor of the forward pass (16 x 1024 x 49152 fp32 = 3.2 GB),
while the answer positions are a fraction of them; they are also projected in chunks.
"""

from __future__ import annotations

from chatalign.rollout.inference import inference

# Answer positions projected through the LM head at once (chunk x vocab x 4 bytes: 2048 -> 400 MB at 49k).
HEAD_CHUNK = 2048


def _decoder_and_head(model):
    """The transformer body returning hidden states, and the LM head; None where the model hides them."""
    try:
        decoder, head = model.get_decoder(), model.get_output_embeddings()
    except (AttributeError, NotImplementedError, ValueError):
        return None, None
    if decoder is None or head is None or getattr(model.config, "logit_scale", None) is not None:
        return None, None
    return decoder, head


def sequence_logprobs(model, input_ids_list: list[list[int]], response_start_list: list[int],
                      batch_size: int = 8, *, grad: bool = False) -> list:
    """log pi(x_t | x_<t) for t in [response_start, len(x)) of each sequence x: one float32 1-D tensor each.

    `response_start` is the index of the first answer token (the prompt length); it must be >= 1. The
    distribution is the model's own at temperature 1, as in `Rollout.logprobs`. By default runs in eval mode
    under inference_mode; `grad=True` keeps the autograd graph and leaves the model's train/eval mode alone.
    """
    if len(input_ids_list) != len(response_start_list):
        raise ValueError("input_ids_list and response_start_list differ in length")
    for i, (ids, start) in enumerate(zip(input_ids_list, response_start_list)):
        if not 1 <= start <= len(ids):
            raise ValueError(f"sequence {i}: response_start {start} outside [1, {len(ids)}]")
    if grad:
        return _score_all(model, input_ids_list, response_start_list, batch_size)
    with inference(model):
        return _score_all(model, input_ids_list, response_start_list, batch_size)


def _score_all(model, input_ids_list, response_start_list, batch_size) -> list:
    out: list = [None] * len(input_ids_list)
    # Sort by length so each batch pads little.
    order = sorted(range(len(input_ids_list)), key=lambda i: -len(input_ids_list[i]))
    for b in range(0, len(order), batch_size):
        chunk = order[b:b + batch_size]
        scores = _score_batch(model, [input_ids_list[i] for i in chunk], [response_start_list[i] for i in chunk])
        for i, s in zip(chunk, scores):
            out[i] = s
    return out


def _score_batch(model, seqs: list[list[int]], starts: list[int]) -> list:
    import torch

    device = next(model.parameters()).device
    width = max(len(s) for s in seqs)
    ids = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, :len(s)] = torch.tensor(s, dtype=torch.long)
    ids = ids.to(device)
    # Right padding and no attention mask: under a causal mask a real token never sees the pads after it, so
    # its hidden state is exact, and sdpa can take its unmasked causal path.
    rows = torch.cat([torch.full((len(s) - st,), r, dtype=torch.long) for r, (s, st) in enumerate(zip(seqs, starts))])
    cols = torch.cat([torch.arange(st - 1, len(s) - 1) for s, st in zip(seqs, starts)])
    rows, cols = rows.to(device), cols.to(device)
    targets = ids[rows, cols + 1]

    decoder, head = _decoder_and_head(model)
    if decoder is None:
        logits = model(input_ids=ids, use_cache=False).logits
        lps = _logprobs_of(logits[rows, cols], targets, None)
    else:
        hidden = decoder(input_ids=ids, use_cache=False).last_hidden_state[rows, cols]
        cap = getattr(model.config, "final_logit_softcapping", None)
        lps = torch.cat([_logprobs_of(head(hidden[i:i + HEAD_CHUNK]), targets[i:i + HEAD_CHUNK], cap)
                         for i in range(0, hidden.shape[0], HEAD_CHUNK)]) if hidden.shape[0] else hidden.new_zeros(0)
    return list(torch.split(lps.float(), [len(s) - st for s, st in zip(seqs, starts)]))


def _logprobs_of(logits, targets, softcap):
    import torch

    logits = logits.float()
    if softcap:
        logits = softcap * torch.tanh(logits / softcap)
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
