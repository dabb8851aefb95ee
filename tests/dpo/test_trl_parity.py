"""Our packed DPO loss, implicit rewards and accuracies equal TRL 1.16 `DPOTrainer`'s on the same pairs and the
same tiny model, at step 0 and after one AdamW step with the same settings on each side.

TRL tokenizes its own data; it gets each prompt as the chat template's text with the generation prompt and
each answer followed by the end-of-turn token `<|im_end|>` (SmolLM2's eos, so TRL adds no other), which are
exactly the token sequences our encoding scores (checked first). TRL's answer log-probs then sum the same
tokens ours do. The policy starts from a different random init than the reference, so the step-0 numbers are
not the trivial log 2 and zero rewards of a policy equal to its reference.
"""

import pytest
import torch

from chatalign.dpo.model import PackedDPOLoss, train_metrics
from chatalign.dpo.pairs import DPOPair, collate_dpo, encode_sides
from chatalign.dpo.reference import score_pairs
from chatalign.reward.pairs import plan_rows
from chatalign.text.masks import render_chat

from ..conftest import tiny_llama

QUESTIONS = ("What is 3+4?", "Name a fruit.", "Greet me.", "Count to 3.")
CHOSEN = ("7", "An apple.", "Hello, nice to meet you!", "1, 2, 3.")
REJECTED = ("8", "A chair, which is furniture.", "No.", "1, 3, 2.")
BETA, LR = 1.0, 1e-3


def our_pairs(tok):
    prompts = [[{"role": "user", "content": q}] for q in QUESTIONS]
    sides = encode_sides(tok, prompts + prompts, list(CHOSEN + REJECTED), None)
    n = len(prompts)
    return prompts, [DPOPair(sides[i][0], sides[n + i][0], 0.0, "none", "toy", "unlabelled",
                             chosen_start=sides[i][1], rejected_start=sides[n + i][1]) for i in range(n)]


def trl_trainer(tok, policy, ref, prompts, out_dir):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    rows = [{"prompt": render_chat(tok, p, add_generation_prompt=True), "chosen": c + tok.eos_token,
             "rejected": r + tok.eos_token} for p, c, r in zip(prompts, CHOSEN, REJECTED, strict=True)]
    args = DPOConfig(output_dir=str(out_dir), beta=BETA, loss_type=["sigmoid"], max_length=None, use_cpu=True,
                     bf16=False, report_to="none", per_device_train_batch_size=4, max_steps=1, learning_rate=LR,
                     lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, adam_beta1=0.9,
                     adam_beta2=0.95, adam_epsilon=1e-8, max_grad_norm=1.0, optim="adamw_torch",
                     logging_strategy="no", save_strategy="no", dataset_num_proc=None, disable_tqdm=True, seed=0)
    return DPOTrainer(model=policy, ref_model=ref, args=args, train_dataset=Dataset.from_list(rows),
                      processing_class=tok)


def trl_eval_step(trainer, batch) -> dict:
    """TRL's loss and logged metrics on `batch` with the policy in eval mode (no update)."""
    trainer.model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, batch).item()
    logged = {k: v[-1] for k, v in trainer._metrics["eval"].items()}
    return {"loss": loss, "accuracy": logged["rewards/accuracies"], "reward_margin": logged["rewards/margins"],
            "chosen_reward": logged["rewards/chosen"], "rejected_reward": logged["rewards/rejected"],
            "chosen_logp": logged["logps/chosen"], "rejected_logp": logged["logps/rejected"]}


def our_eval_step(policy, rows) -> dict:
    policy.eval()
    with torch.no_grad():
        loss_sum, aux = PackedDPOLoss(policy, BETA)(**collate_dpo(rows))
    return {"loss": loss_sum.item() / aux["pairs_seen"], **train_metrics(aux)}


def our_one_step(policy, rows, tmp_path):
    from chatalign.runs import RunDir
    from chatalign.training.config import CheckpointConfig, DeepSpeedConfig, OptimConfig
    from chatalign.training.distributed import DistContext
    from chatalign.training.loop import TrainJob, train

    job = TrainJob(PackedDPOLoss(policy, BETA), rows, [len(r.pairs) for r in rows], collate_dpo,
                   [list(range(len(rows)))], unit="pairs", extra_metrics=train_metrics)
    optim = OptimConfig(lr=LR, weight_decay=0.0, betas=(0.9, 0.95), eps=1e-8, schedule="constant", grad_clip=1.0)
    return train(job, optim, CheckpointConfig(every_steps=10**9), DeepSpeedConfig(), RunDir(tmp_path, "dpo"),
                 DistContext(), resume=False, progress=False)


def test_loss_rewards_and_one_step_equal_trl(smol_tokenizer, tmp_path):
    tok = smol_tokenizer
    prompts, pairs = our_pairs(tok)
    ref = tiny_llama(tok, seed=0)
    trainer = trl_trainer(tok, tiny_llama(tok, seed=1), ref, prompts, tmp_path / "trl")
    prepared = [trainer.train_dataset[i] for i in range(len(pairs))]
    for p, t in zip(pairs, prepared, strict=True):  # the same tokens, the same answer spans
        assert t["prompt_ids"] + t["chosen_ids"] == p.chosen_ids and len(t["prompt_ids"]) == p.chosen_start
        assert t["prompt_ids"] + t["rejected_ids"] == p.rejected_ids and len(t["prompt_ids"]) == p.rejected_start
    batch = trainer.data_collator([{k: t[k] for k in ("prompt_ids", "chosen_ids", "rejected_ids")}
                                   for t in prepared])
    for pair, (chosen, rejected) in zip(pairs, score_pairs(ref, pairs, 4096).tolist(), strict=True):
        pair.ref_chosen, pair.ref_rejected = chosen, rejected
    rows, _ = plan_rows(pairs, 4, 4096, 1, seed=0)

    ours_policy = tiny_llama(tok, seed=1)
    step0_trl, step0_ours = trl_eval_step(trainer, batch), our_eval_step(ours_policy, rows)
    assert step0_ours == pytest.approx(step0_trl, abs=1e-5)
    assert abs(step0_trl["loss"] - 0.6931) > 0.1 and 0 < step0_trl["accuracy"] < 1  # not the trivial start

    trainer.model.train()
    trainer.train()
    logged = our_one_step(ours_policy, rows, tmp_path / "ours")
    assert logged["loss"] == pytest.approx(step0_trl["loss"], abs=1e-5)  # the step trained on the same loss
    step1_trl, step1_ours = trl_eval_step(trainer, batch), our_eval_step(ours_policy, rows)
    assert step1_ours == pytest.approx(step1_trl, abs=1e-5)
    assert step1_trl["loss"] < step0_trl["loss"] - 0.2  # the step moved the policy: the match is not trivial
