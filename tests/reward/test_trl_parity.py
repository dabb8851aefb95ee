"""Our packed ranking loss on a batch equals TRL RewardTrainer's loss with the same margins.

TRL 1.16 pads chosen and rejected sequences into one batch and reads each at its rightmost non-pad token;
our sequences are whole rendered conversations, which for ChatML end on the newline after <|im_end|>, so
SmolLM2's own pad token (<|im_end|>) leaves both reading the same position.
"""

import pytest
import torch

from chatalign.reward.margins import MARGIN_TABLES, margin_for
from chatalign.reward.model import PackedRewardLoss
from chatalign.reward.pairs import PairExample, collate_pairs, encode_answers, plan_rows

from ..conftest import reward_model_from_causal_lm


def test_loss_equals_trl_reward_trainer(tiny_model, smol_tokenizer, tmp_path):
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    tok = smol_tokenizer.__class__.from_pretrained(smol_tokenizer.name_or_path)  # the trainer may edit it
    assert tok.pad_token == "<|im_end|>"
    rm = reward_model_from_causal_lm(tiny_model, seed=2)
    rm.config.pad_token_id = tok.pad_token_id
    prompts = [[{"role": "user", "content": q}] for q in ("What is 3+4?", "Name a fruit.", "Greet me.", "Count to 3")]
    chosen = encode_answers(tok, prompts, ["7", "An apple.", "Hello, nice to meet you!", "1, 2, 3."])
    rejected = encode_answers(tok, prompts, ["8", "A chair, which is furniture.", "No.", "1, 3, 2."])
    strengths = ["significantly_better", "better", "slightly_better", "unsure"]
    margins = [margin_for(s, MARGIN_TABLES["large"]) for s in strengths]
    rows = [{"chosen_ids": c, "rejected_ids": r, "margin": m} for c, r, m in zip(chosen, rejected, margins, strict=True)]

    args = RewardConfig(output_dir=str(tmp_path / "trl"), bf16=False, report_to="none", use_cpu=True,
                        per_device_train_batch_size=4, max_length=None,
                        dataset_num_proc=None, logging_strategy="no", save_strategy="no")
    trainer = RewardTrainer(model=rm, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
    batch = trainer.data_collator([dict(r) for r in rows])
    rm.eval()
    with torch.no_grad():
        trl_loss = trainer.compute_loss(rm, batch).item()
        pairs = [PairExample(c, r, m, "none", "s", "unlabelled") for c, r, m in zip(chosen, rejected, margins, strict=True)]
        packed_rows, _ = plan_rows(pairs, 4, 4096, 1, seed=0)
        ours_sum, aux = PackedRewardLoss(rm)(**collate_pairs(packed_rows))
    assert aux["pairs_seen"] == 4
    assert ours_sum.item() / 4 == pytest.approx(trl_loss, abs=1e-5)
    assert trl_loss > 0.5  # large margins on a random model: the comparison is not of two near-zero numbers
