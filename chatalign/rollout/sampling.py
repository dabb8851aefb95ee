"""Choosing the next token from a row of logits, and the log-probability PPO needs for it.

Two distributions are involved and they must not be confused:
- the *sampling* distribution: softmax(logits / T), truncated to the smallest set of tokens whose probability
  mass reaches `top_p` and renormalised (nucleus sampling, Holtzman et al. 2019); argmax when T == 0;
- the *policy* distribution: softmax(logits) at temperature 1, untruncated. This is pi_theta(token | context),
  the quantity in the PPO ratio and in the KL penalty, so it is the one `token_logprobs` returns whatever
  temperature or top_p was used to draw the token.
"""

from __future__ import annotations

import torch

# First guess of how many top tokens hold a row's nucleus; multiplied by 4 until every row's nucleus fits.
NUCLEUS_FIRST_K = 64
# Rows wider than 8 blocks of this many entries draw in two levels (a block, then a token in it): _inverse_cdf.
CDF_BLOCK = 256


def next_tokens(logits: torch.Tensor, temperature: float, top_p: float,
                generator: torch.Generator | None) -> torch.Tensor:
    """Draw one token per row of `logits` [B, V]: greedy when temperature == 0, else temperature + top-p."""
    return choose_tokens(logits, temperature, top_p, generator, with_logprobs=False)[0]


def choose_tokens(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None,
                  with_logprobs: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`next_tokens`, and with `with_logprobs` each drawn token's policy log-prob (`token_logprobs`).

    At temperature 1 the sampling distribution before truncation is the policy itself, so the log-normaliser
    comes from the exponentials the draw needs anyway (PPO samples at T = 1, top_p = 1: one exp pass over
    the vocabulary instead of three)."""
    if temperature == 0:
        # torch.argmax returns the first maximal index, as `generate(do_sample=False)` does.
        tokens = logits.argmax(dim=-1)
        return tokens, token_logprobs(logits, tokens) if with_logprobs else None
    x = logits.float()
    scaled = x if temperature == 1 else x / temperature
    if top_p >= 1.0:
        peak = scaled.amax(dim=-1, keepdim=True)
        weights = (scaled - peak).exp_()
        tokens = _inverse_cdf(weights, generator)
        log_norm = (peak.squeeze(-1) + weights.sum(-1).log()) if with_logprobs and temperature == 1 else None
    else:
        probs, ids, lse = _nucleus(scaled, top_p)
        tokens = ids.gather(-1, _inverse_cdf(probs, generator).unsqueeze(-1)).squeeze(-1)
        log_norm = lse.squeeze(-1) if temperature == 1 else None
    if not with_logprobs:
        return tokens, None
    if log_norm is None:
        return tokens, token_logprobs(x, tokens)
    return tokens, x.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - log_norm


def _nucleus(scaled: torch.Tensor, top_p: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(probabilities, token ids) of the top tokens, most probable first, zero outside each row's nucleus;
    and logsumexp(scaled) [B, 1].

    The nucleus is the shortest prefix of the tokens sorted by probability whose mass reaches top_p (a token is
    kept while the mass before it is < top_p; the first is always kept). A full sort of the vocabulary per row
    and step costs more than the forward pass of a small model on CPU (measured 55 ms for 16 x 49k), so take
    the top k, and grow k only while some row's top-k mass is still short of top_p.
    """
    vocab = scaled.shape[-1]
    lse = torch.logsumexp(scaled, dim=-1, keepdim=True)
    k = min(NUCLEUS_FIRST_K, vocab)
    while True:
        top, ids = torch.topk(scaled, k, dim=-1, sorted=True)
        probs = torch.exp(top - lse)
        if k == vocab or bool((probs.sum(-1) >= top_p).all()):
            break
        k = min(k * 4, vocab)
    before = probs.cumsum(-1) - probs
    return probs.masked_fill(before >= top_p, 0.0), ids, lse


def _inverse_cdf(weights: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Index drawn per row with probability proportional to `weights` [B, N] (non-negative, not all zero).

    One uniform number per row against the running sum: cheaper than torch.multinomial over a 49k vocabulary
    (which the profile showed at ~17 ms per step for 16 rows), and seeded by the same generator. A running
    sum over a whole 49k row is itself slow (cumsum is sequential: ~8 ms for 64 rows), so wide rows first
    pick a block of CDF_BLOCK entries by the running sum of block totals, then an entry inside that block.
    """
    rows, n = weights.shape

    def u_of(total: torch.Tensor) -> torch.Tensor:  # one uniform number per row in [0, total)
        u = torch.rand(total.shape, generator=generator, device=weights.device, dtype=weights.dtype)
        return _below(u * total, total)

    if n <= 8 * CDF_BLOCK:
        cdf = weights.cumsum(-1)
        return torch.searchsorted(cdf, u_of(cdf[:, -1:]), right=True).squeeze(-1).clamp_(max=n - 1)
    blocks_n = -(-n // CDF_BLOCK)
    if blocks_n * CDF_BLOCK != n:
        weights = torch.nn.functional.pad(weights, (0, blocks_n * CDF_BLOCK - n))  # zero weight: never drawn
    blocks = weights.view(rows, blocks_n, CDF_BLOCK)
    block_cdf = blocks.sum(-1).cumsum(-1)
    u = u_of(block_cdf[:, -1:])
    # The first block whose running total exceeds u has a positive total (its total is the step past u).
    b = torch.searchsorted(block_cdf, u, right=True).clamp_(max=blocks_n - 1)
    before = torch.where(b > 0, block_cdf.gather(-1, (b - 1).clamp(min=0)), torch.zeros_like(u))
    inner = blocks[torch.arange(rows, device=weights.device), b.squeeze(-1)].cumsum(-1)
    j = torch.searchsorted(inner, _below((u - before).clamp(min=0), inner[:, -1:]), right=True)
    return (b * CDF_BLOCK + j.clamp_(max=CDF_BLOCK - 1)).squeeze(-1)


def _below(u: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    # u < total strictly, so some entry of the running sum exceeds it; a zero-weight entry never does (its
    # running sum equals its predecessor's), so it is never drawn.
    return torch.minimum(u, torch.nextafter(total, torch.zeros_like(total)))


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[token] per row, at temperature 1 without truncation (the policy's log pi)."""
    logits = logits.float()
    picked = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


class TokenRecorder:
    """Draws each row's next token and appends it (and its policy log-prob) to that row's rollout.

    Rows are named by work-item ids; a decode loop hands in the ids of its rows in batch order (None for a row
    that is already done but still occupies a slot, as in the static-cache loop).
    """

    def __init__(self, num_items: int, *, max_new_tokens: int, temperature: float, top_p: float,
                 stop_token_ids: list[int], generator: torch.Generator | None, return_logprobs: bool,
                 device: torch.device, progress=None):
        self.responses: list[list[int]] = [[] for _ in range(num_items)]
        self.logprobs: list[list[float]] = [[] for _ in range(num_items)]
        self.finished = [False] * num_items
        self.max_new_tokens = max_new_tokens
        self.temperature, self.top_p = temperature, top_p
        self.stop = torch.tensor(sorted(set(stop_token_ids)), dtype=torch.long, device=device)
        self.generator = generator
        self.return_logprobs = return_logprobs
        self.progress = progress
        # Work counters for monitoring and benchmarks: forward calls and the rows they carried.
        self.stats = {"prefill_calls": 0, "prefill_tokens": 0, "decode_steps": 0, "decode_row_steps": 0}

    def advance(self, rows: list[int | None], logits: torch.Tensor) -> tuple[torch.Tensor, list[bool]]:
        """Choose tokens for `logits` [B, V]; return them and, per row, whether it goes on decoding."""
        tokens, lps = choose_tokens(logits, self.temperature, self.top_p, self.generator, self.return_logprobs)
        stopped = torch.isin(tokens, self.stop).tolist() if self.stop.numel() else [False] * len(rows)
        lps = lps.tolist() if lps is not None else None
        # One host transfer per step for the whole batch; the per-row loop below is plain Python lists.
        toks = tokens.tolist()
        alive = []
        for r, item in enumerate(rows):
            if item is None:
                alive.append(False)
                continue
            self.responses[item].append(toks[r])
            if lps is not None:
                self.logprobs[item].append(lps[r])
            done = stopped[r] or len(self.responses[item]) >= self.max_new_tokens
            self.finished[item] = stopped[r]
            alive.append(not done)
            if done and self.progress is not None:
                self.progress.update(1)
        return tokens, alive
