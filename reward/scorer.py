"""The scoring API later stages use (rejection sampling, PPO, safety distillation): nothing else of this
stage is needed to turn (prompt, answer) pairs into rewards.

    from chatalign.reward import load_scorer
    scorer = load_scorer("runs/quickstart/reward_helpful")      # a run directory or an HF RM directory
    scores = scorer.score([[{"role": "user", "content": "2+2?"}]], ["4"], sigmoid=True)

Each answer is rendered after its prompt with the RM's own chat template (the one it was trained with, saved
in its tokenizer) and scored at the last token of that text, exactly as in training and as the standard API
reads it (`AutoModelForSequenceClassification` fed `tokenizer.apply_chat_template(conversation)`). Sequences
are packed padding-free into forwards of about `batch_tokens` tokens, in inference mode.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from chatalign.errors import UserError
from chatalign.training.packed_attention import default_attention


class RewardScorer:
    def __init__(self, model, tokenizer, device: torch.device, max_seq_len: int | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = device
        self.max_seq_len = max_seq_len

    def encode(self, prompts: Sequence[Sequence[dict]], answers: Sequence[str]) -> list[list[int]]:
        from chatalign.reward.pairs import encode_answers

        if len(prompts) != len(answers):
            raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers")
        ids = encode_answers(self.tokenizer, [_dicts(p) for p in prompts], list(answers), self.max_seq_len)
        bad = [i for i, x in enumerate(ids) if x is None]
        if bad:
            raise UserError(f"answers {bad[:5]} do not fit max_seq_len={self.max_seq_len} even with only "
                            "their last round")
        return ids  # type: ignore[return-value]

    def score_ids(self, sequences: Sequence[Sequence[int]], batch_tokens: int = 8192) -> torch.Tensor:
        """Rewards of token sequences each ending on the token to read (float32, on CPU)."""
        from chatalign.progress import counting_bar
        from chatalign.reward.model import packed_rewards

        out = torch.empty(len(sequences), dtype=torch.float32)
        with torch.inference_mode(), counting_bar(len(sequences), "scoring", "answer") as bar:
            for group, (ids, pos, read) in packed_rows(sequences, batch_tokens, self.device):
                out[torch.tensor(group)] = packed_rewards(self.model, ids, pos, read).float().cpu()
                if bar is not None:
                    bar.update(len(group))
        return out

    def score(self, prompts: Sequence[Sequence[dict]], answers: Sequence[str], sigmoid: bool = False,
              batch_tokens: int = 8192) -> torch.Tensor:
        """One reward per (prompt messages, answer text); sigmoid=True maps it to (0, 1) as PPO's R_s, R_h."""
        scores = self.score_ids(self.encode(prompts, answers), batch_tokens)
        return torch.sigmoid(scores) if sigmoid else scores


def packed_rows(sequences: Sequence[Sequence[int]], batch_tokens: int, device) -> list[tuple[list[int], tuple]]:
    """(indices, (input_ids [1, T], position_ids [1, T], read_index)) per packed row of about `batch_tokens`
    tokens; each sequence is read at its last token."""
    from chatalign.text.packing import pack_bins

    if not sequences:
        return []
    budget = max(batch_tokens, max(len(s) for s in sequences))
    rows = []
    for group in pack_bins([len(s) for s in sequences], budget):
        ids, pos, read = [], [], []
        for i in group:
            ids.extend(sequences[i])
            pos.extend(range(len(sequences[i])))
            read.append(len(ids) - 1)
        rows.append((group, (torch.tensor([ids], device=device), torch.tensor([pos], device=device),
                             torch.tensor(read, device=device))))
    return rows


def _dicts(messages) -> list[dict]:
    return [m if isinstance(m, dict) else {"role": getattr(m.role, "value", m.role), "content": m.content}
            for m in messages]


def check_read_position(path: str, config) -> None:
    """Refuse an RM of a chatalign reward run trained before the head read where the chat template ends: it
    was trained at the answer's end-of-turn token, and read one token later its scores are not the ones trained."""
    import json
    from pathlib import Path

    from chatalign.reward.model import READ_POSITION_KEY

    manifest = Path(path).parent / "manifest.json"
    if getattr(config, READ_POSITION_KEY, None) is not None or not manifest.is_file():
        return  # ours and current, or any other HF reward model (read the standard way)
    try:
        stage = json.loads(manifest.read_text(encoding="utf-8")).get("stage")
    except (OSError, ValueError):
        return
    if stage == "reward":
        raise UserError(f"{path}: this reward model was trained by an older chatalign to be read at the answer's "
                        "end-of-turn token; scoring now reads where the chat template's text ends: train it again "
                        "(move its run directory aside)")


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_scorer(path_or_run_dir: str | os.PathLike, device: str | torch.device | None = None,
                dtype: str = "auto", max_seq_len: int | None = None) -> RewardScorer:
    """A scorer from a reward run directory or a saved RM (any HF sequence-classification dir, num_labels=1)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from chatalign.models import load_tokenizer, resolve_model_path, torch_dtype

    path = resolve_model_path(path_or_run_dir)
    try:
        config = AutoConfig.from_pretrained(path)
    except OSError as exc:
        raise UserError(f"cannot load a reward model from {path}: {exc}") from None
    archs = config.architectures or []
    if getattr(config, "num_labels", None) != 1 or not any(a.endswith("ForSequenceClassification") for a in archs):
        raise UserError(f"{path} is not a reward model (expected a *ForSequenceClassification with num_labels=1, "
                        f"found {archs or 'no architecture'} with num_labels={getattr(config, 'num_labels', None)})")
    check_read_position(path, config)
    dev = torch.device(device) if device is not None else default_device()
    # per-document attention: scoring packs many answers per row, and dense SDPA would compute every block
    model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch_dtype(dtype), use_safetensors=True,
                                                               attn_implementation=default_attention(None))
    model.to(dev)
    return RewardScorer(model, load_tokenizer(path), dev, max_seq_len)
