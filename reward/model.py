"""The scalar-head reward model: a causal LM's decoder with a `score` head (num_labels=1).

It is a Hugging Face `AutoModelForSequenceClassification` (`LlamaForSequenceClassification` for Llama), so
a saved RM reloads with `from_pretrained` anywhere. It starts from a chat checkpoint: the decoder weights
are the chat model's, its LM head is dropped and the scalar head starts from a seeded random init.

Training and scoring never call the HF forward, which runs the head on every position and finds the read
position from padding: our rows are packed and padding-free (position ids restart per sequence, no
attention mask, no cache, see chatalign/text/packing.py), the decoder runs once per row and the head reads only
the hidden state at the last token of each rendered conversation (reward/pairs.py). The saved config makes
the HF forward read that same token (see `prepare_for_export`).
"""

from __future__ import annotations

import logging
import os

import torch
from torch import nn

from chatalign.errors import UserError
from chatalign.training.packed_attention import default_attention, packed_decoder_forward

log = logging.getLogger(__name__)


def unwrap(model: nn.Module) -> nn.Module:
    """The `XForSequenceClassification` under a peft wrapper (LoRA layers stay injected in it)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def decoder_and_score(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    rm = unwrap(model)
    decoder = getattr(rm, getattr(rm, "base_model_prefix", "model"), None)
    score = getattr(rm, "score", None)
    if decoder is None or score is None:
        raise TypeError(f"{type(rm).__name__}: no decoder and `score` head (not a sequence-classification RM?)")
    return decoder, score


def packed_rewards(model: nn.Module, input_ids: torch.Tensor, position_ids: torch.Tensor,
                   read_index: torch.Tensor) -> torch.Tensor:
    """Scalar rewards (float32) of the sequences of a packed row [1, T], read at flat positions `read_index`."""
    decoder, score = decoder_and_score(model)
    out = packed_decoder_forward(decoder, input_ids, position_ids)
    hidden = out.last_hidden_state.reshape(-1, out.last_hidden_state.shape[-1])
    return score(hidden[read_index.to(hidden.device)]).squeeze(-1).float()


class PackedRewardLoss(nn.Module):
    """One module for the training loop (and DeepSpeed): summed ranking loss of the pairs of a packed batch.

    Pair k's chosen sequence is read at read_index[2k], its rejected one at read_index[2k + 1]."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, position_ids, read_index, margin, **_):
        from chatalign.reward.loss import ranking_loss

        rewards = packed_rewards(self.model, input_ids.to(self._device()), position_ids.to(self._device()),
                                 read_index)
        r_chosen, r_rejected = rewards[0::2], rewards[1::2]
        losses = ranking_loss(r_chosen, r_rejected, margin.to(rewards.device))
        with torch.no_grad():
            gap = r_chosen - r_rejected
            aux = {"correct": float((gap > 0).sum()), "pairs_seen": float(gap.numel()),
                   "gap_sum": float(gap.sum()), "chosen_sum": float(r_chosen.sum()),
                   "rejected_sum": float(r_rejected.sum())}
        return losses.sum(), aux

    def _device(self):
        return next(self.model.parameters()).device


def freeze_lower_layers(model: nn.Module, trainable_layers: int) -> list[str]:
    """Train the top `trainable_layers` decoder layers, the final norm and the `score` head; return the
    trainable names (chatalign.training.top_layers)."""
    from chatalign.training.top_layers import train_top_layers

    decoder, head = decoder_and_score(model)
    return train_top_layers(model, decoder, head, trainable_layers)


def train_metrics(aux: dict) -> dict:
    """Step metrics from the summed aux values of PackedRewardLoss."""
    n = aux.get("pairs_seen") or 1.0
    return {"accuracy": aux["correct"] / n, "reward_gap": aux["gap_sum"] / n,
            "chosen_reward": aux["chosen_sum"] / n, "rejected_reward": aux["rejected_sum"] / n}


def load_reward_model(name: str | os.PathLike | None, dtype: str = "auto", trust_remote_code: bool = False,
                      attn_implementation: str | None = None, seed: int = 0,
                      generator: torch.Generator | None = None, **load_kwargs):
    """A sequence-classification RM from a chat checkpoint (HF dir, SFT run dir, hub id or `embedded`),
    or an RM saved earlier. The new scalar head is drawn from `generator` (which the draw advances), else
    from a generator seeded with `seed`; torch's global generator is left as it was."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    from chatalign.models import resolve_model_path, torch_dtype
    from chatalign.seeding import drawing_from

    path = resolve_model_path(name)
    if trust_remote_code:
        log.warning("trust_remote_code is on: code from %s will run on this machine", path)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "score.weight newly initialized" is the point, not a problem
    try:
        with drawing_from(generator if generator is not None else torch.Generator().manual_seed(seed)):
            model = AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=1, dtype=torch_dtype(dtype), trust_remote_code=trust_remote_code,
                use_safetensors=True, attn_implementation=default_attention(attn_implementation), **load_kwargs)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load a reward model from {path}: {exc}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.use_cache = False
    return model


READ_POSITION_KEY = "reward_read_position"
READ_POSITION = "end_of_chat_template"  # config.json: where the head was trained to read (reward/pairs.py)


def template_end_token_ids(tokenizer) -> set[int]:
    """The token a conversation rendered with the tokenizer's chat template ends on (for ChatML a newline)."""
    from chatalign.reward.pairs import render_ids

    probe = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    return {render_ids(tokenizer, [probe])[0][-1]}


def distinct_pad_id(tokenizer, read_token_ids: set[int]) -> int | None:
    """A pad id that is not a token the head reads at.

    HF's sequence-classification forward reads the rightmost token that is not the pad token, whichever side
    is padded; were the last token of a rendered conversation the pad token (SmolLM2's pad *is* its
    end-of-turn token, and some templates end on it), it would read the token before."""
    pad = tokenizer.pad_token_id
    if pad is not None and pad not in read_token_ids:
        return pad
    for candidate in (tokenizer.unk_token_id, getattr(tokenizer, "eos_token_id", None), tokenizer.bos_token_id):
        if candidate is not None and candidate not in read_token_ids:
            return candidate
    vocab = tokenizer.get_vocab()
    for text in ("<|endoftext|>", "<pad>", "<unk>"):
        if text in vocab and vocab[text] not in read_token_ids:
            return vocab[text]
    return pad


def prepare_for_export(model: nn.Module, tokenizer, read_token_ids: set[int] | None = None) -> None:
    """Set config and tokenizer pad ids so that the HF forward of the saved RM reads where we do, and
    record that position in the config. `read_token_ids`: the last tokens of the trained sequences (None:
    the one the chat template ends on)."""
    if read_token_ids is None:
        read_token_ids = template_end_token_ids(tokenizer)
    cfg = unwrap(model).config
    setattr(cfg, READ_POSITION_KEY, READ_POSITION)
    pad = distinct_pad_id(tokenizer, read_token_ids)
    if pad is None:
        return
    cfg.pad_token_id = pad
    text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    text_cfg.pad_token_id = pad
    if tokenizer.pad_token_id != pad:
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(pad)


def save_reward_model(model: nn.Module, tokenizer, target, read_token_ids: set[int] | None = None,
                      state_dict: dict | None = None):
    """Write an HF directory (safetensors, tokenizer) that AutoModelForSequenceClassification loads and,
    fed `apply_chat_template(conversation)`, scores as we do."""
    from chatalign.models import save_hf_atomic

    prepare_for_export(model, tokenizer, read_token_ids)
    rm = unwrap(model)
    rm.config.architectures = [type(rm).__name__]
    return save_hf_atomic(rm, tokenizer, target, state_dict=state_dict)
