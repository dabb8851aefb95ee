"""Preference pairs -> the token sequences DPO scores, packed padding-free as the reward model packs them.

Each side of a pair is the prompt plus one answer, rendered with the chat template as in SFT and the RM
(chatalign.text.masks, train_on="last_assistant"): the answer's tokens are the trained span of the loss mask,
its end-of-turn token included, and the sequence is cut right after it (the newline a template writes after
the end-of-turn token is never generated, so it is not scored). log pi(y|x) sums the log-probs of exactly
those answer tokens.

A side longer than `max_seq_len` first loses its oldest dialogue rounds (as the RM's pairs); if the last round
alone is still too long the pair is left out and counted (`too_long`), never cut mid-answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from chatalign.reward.pairs import PairExample, PairRow
from chatalign.text.packing import IGNORE


@dataclass
class DPOPair(PairExample):
    """A reward-model pair plus where each answer starts and the reference log-probs of both sides."""

    chosen_start: int = 0  # index of the chosen answer's first token in chosen_ids
    rejected_start: int = 0
    ref_chosen: float | None = None  # log pi_ref(y_w|x), filled in before training
    ref_rejected: float | None = None

    @property
    def answer_tokens(self) -> int:
        return len(self.chosen_ids) - self.chosen_start + len(self.rejected_ids) - self.rejected_start


def _answer_span(enc) -> tuple[list[int], int] | None:
    """(ids cut after the answer's last token, index of its first token); None when no answer token is left."""
    trained = [t for t, m in enumerate(enc.loss_mask) if m]
    if not trained:
        return None
    return list(enc.input_ids[:trained[-1] + 1]), trained[0]


def encode_sides(tokenizer, prompts: Sequence[Sequence[dict]], answers: Sequence[str],
                 max_seq_len: int | None) -> list[tuple[list[int], int] | None]:
    """(ids, answer start) of each prompt + answer; None where even its last round does not fit max_seq_len."""
    from chatalign.text.masks import drop_oldest_round, encode_chat_batch

    convs = [list(p) + [{"role": "assistant", "content": a}] for p, a in zip(prompts, answers, strict=True)]
    rows, _ = encode_chat_batch(tokenizer, convs, train_on="last_assistant")
    out: list[tuple[list[int], int] | None] = []
    for conv, enc in zip(convs, rows, strict=True):
        side = _answer_span(enc)
        while side is not None and max_seq_len is not None and len(side[0]) > max_seq_len:
            conv = drop_oldest_round(conv)
            side = None if conv is None else _answer_span(
                encode_chat_batch(tokenizer, [conv], train_on="last_assistant")[0][0])
        out.append(side)
    return out


def encode_dpo_pairs(tokenizer, prefs: Sequence, sources: Sequence[str],
                     max_seq_len: int | None) -> tuple[list[DPOPair], dict]:
    """DPOPairs of the preference records that fit, and their statistics (pair_stats)."""
    from chatalign.reward.margins import strength_name
    from chatalign.reward.pairs import message_dicts
    from chatalign.reward.safety_bins import pair_bin

    prompts = [message_dicts(p.prompt) for p in prefs]
    sides = encode_sides(tokenizer, prompts + prompts, [p.chosen for p in prefs] + [p.rejected for p in prefs],
                         max_seq_len)
    kept = [(pref, source, chosen, rejected) for pref, source, chosen, rejected
            in zip(prefs, sources, sides[:len(prefs)], sides[len(prefs):], strict=True) if chosen and rejected]
    pairs = [DPOPair(chosen[0], rejected[0], 0.0, strength_name(pref.strength) or "none", source, pair_bin(pref),
                     chosen_start=chosen[1], rejected_start=rejected[1]) for pref, source, chosen, rejected in kept]
    return pairs, pair_stats(pairs, too_long=len(prefs) - len(pairs))


def pair_stats(pairs: Sequence[DPOPair], too_long: int) -> dict:
    """Pairs, pairs left out as too long, tokens (all and answer), side lengths, strengths, safety bins."""
    lengths = sorted(len(s) for e in pairs for s in (e.chosen_ids, e.rejected_ids))
    return {"pairs": len(pairs), "too_long": too_long, "tokens": sum(lengths),
            "answer_tokens": sum(p.answer_tokens for p in pairs),
            "median_length": lengths[len(lengths) // 2] if lengths else 0,
            "max_length": lengths[-1] if lengths else 0,
            "strengths": dict(sorted(Counter(e.strength for e in pairs).items())),
            "safety_bins": dict(sorted(Counter(e.safety_bin for e in pairs).items()))}


def scoring_rows(pairs: Sequence[DPOPair], batch_tokens: int) -> list[PairRow]:
    """The pairs in their order, packed into rows of at most `batch_tokens` tokens (a longer pair alone)."""
    rows: list[PairRow] = []
    for pair in pairs:
        if not rows or rows[-1].n_tokens + pair.n_tokens > batch_tokens:
            rows.append(PairRow())
        rows[-1].pairs.append(pair)
    return rows


def collate_dpo(rows: Sequence[PairRow]) -> dict:
    """One padding-free batch [1, T]: per pair its chosen then its rejected sequence, position ids restarting
    at each. labels[t] is token t+1 where that token belongs to an answer (IGNORE elsewhere); `label_seq`
    gives, for each labelled position in order, its sequence (pair k: 2k chosen, 2k + 1 rejected);
    `ref_logps` the reference log-probs in the same order, when the pairs have them."""
    import torch

    ids: list[int] = []
    pos: list[int] = []
    labels: list[int] = []
    label_seq: list[int] = []
    ref: list[float | None] = []
    for row in rows:
        for pair in row.pairs:
            for seq, start, ref_lp in ((pair.chosen_ids, pair.chosen_start, pair.ref_chosen),
                                       (pair.rejected_ids, pair.rejected_start, pair.ref_rejected)):
                n = len(seq)
                ids.extend(seq)
                pos.extend(range(n))
                labels.extend([IGNORE] * (start - 1) + list(seq[start:]) + [IGNORE])
                label_seq.extend([len(ref)] * (n - start))
                ref.append(ref_lp)
    batch = {"input_ids": torch.tensor([ids], dtype=torch.long),
             "position_ids": torch.tensor([pos], dtype=torch.long),
             "labels": torch.tensor([labels], dtype=torch.long),
             "label_seq": torch.tensor(label_seq, dtype=torch.long)}
    if ref and all(r is not None for r in ref):
        batch["ref_logps"] = torch.tensor(ref, dtype=torch.float32)
    return batch
