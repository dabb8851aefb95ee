"""The training forwards agree with the rollout engine's log-probs and with the reward model's reading."""

import torch

from chatalign.rlhf.ppo.batch import build_batch, pad_ragged
from chatalign.rlhf.ppo.forward import PolicyForward, ValueForward, batched_logprobs, batched_values
from chatalign.rollout.engine import generate_rollouts
from chatalign.text.masks import encode_prompt

from ..conftest import peaky_llama, prompt_dicts


def test_policy_logprobs_match_the_rollout_engine_and_entropy_is_sane(smol_tokenizer):
    lm = peaky_llama(smol_tokenizer).eval()
    ids = [encode_prompt(smol_tokenizer, p["messages"]) for p in prompt_dicts(3)]
    ro = generate_rollouts(lm, smol_tokenizer, ids, num_samples=2, max_new_tokens=6, seed=0)
    batch = build_batch([r.prompt_ids for r in ro], [r.response_ids for r in ro], smol_tokenizer.pad_token_id)
    old = pad_ragged([r.logprobs for r in ro], batch.mask.shape[1])
    fwd = PolicyForward(lm)
    with torch.no_grad():
        lp, ent = fwd(batch.input_ids, batch.positions, batch.targets)
    assert torch.allclose(lp * batch.mask, old, atol=1e-4)
    assert torch.allclose(batched_logprobs(fwd, batch, micro=2), old, atol=1e-4)  # chunked, same numbers
    vocab = len(smol_tokenizer)
    assert ((ent >= 0) & (ent <= torch.log(torch.tensor(float(vocab))) + 1e-4)).all()


def test_values_are_the_reward_head_read_at_each_answer_position(smol_tokenizer):
    from chatalign.reward.model import packed_rewards

    from ...conftest import reward_model_from_causal_lm

    rm = reward_model_from_causal_lm(peaky_llama(smol_tokenizer), seed=1).eval()
    batch = build_batch([[5, 6, 7], [8, 9]], [[1, 2], [3, 4, 10]], pad_id=0)
    values = batched_values(ValueForward(rm), batch, micro=1)
    with torch.no_grad():  # the reward of the prefix ending at the predicting position
        seq = [8, 9, 3, 4]
        want = packed_rewards(rm, torch.tensor([seq]), torch.arange(4)[None], torch.tensor([3]))
    assert torch.allclose(values[1, 2], want[0], atol=1e-5)
    assert values[0, 2] == 0.0  # past the answer: masked


def test_an_update_with_gradient_checkpointing_equals_one_without(smol_tokenizer):
    import copy

    from chatalign.rlhf.config import PPOSection
    from chatalign.rlhf.ppo.backends import ppo_backends
    from chatalign.rlhf.ppo.experience import Experience
    from chatalign.rlhf.ppo.models import assemble, enable_checkpointing
    from chatalign.rlhf.ppo.update import PPOUpdate
    from chatalign.rlhf.reward_fn import RewardBatch
    from chatalign.training.config import LoraConfig
    from chatalign.training.distributed import DistContext

    from ...conftest import reward_model_from_causal_lm

    lm = peaky_llama(smol_tokenizer)
    value = reward_model_from_causal_lm(lm, seed=1)
    batch = build_batch([[5, 6, 7], [8, 9]], [[1, 2], [3, 4, 10]], pad_id=0)
    g = torch.Generator().manual_seed(0)
    old_logprobs = torch.full((2, 3), -2.0) * batch.mask
    exp = Experience(batch=batch, rollouts=[], rewards=RewardBatch(combined=torch.zeros(2)), score=torch.zeros(2),
                     old_logprobs=old_logprobs, ref_logprobs=old_logprobs, values=torch.zeros(2, 3),
                     kl=torch.zeros(2, 3), advantages=torch.randn(2, 3, generator=g) * batch.mask,
                     returns=torch.ones(2, 3) * batch.mask, stats={})
    cfg = PPOSection.model_validate({"batch_prompts": 2, "minibatch": 2, "micro_batch": 1, "optim": {"lr": 1e-2}})
    results = []
    for checkpointing in (False, True):
        models = assemble(copy.deepcopy(lm), smol_tokenizer, copy.deepcopy(value),
                          LoraConfig(enabled=True, r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]),
                          value_trainable_layers=1)
        if checkpointing:
            enable_checkpointing(models.policy)
            enable_checkpointing(models.value)
        policy, value_net = ppo_backends(models, cfg, DistContext())
        update = PPOUpdate(policy, value_net, DistContext(), minibatch=2, micro_batch=1, epochs=1, clip=0.2,
                           value_clip=0.2)
        calls = []
        mlp = models.policy.get_base_model().model.layers[0].mlp
        hook = mlp.register_forward_pre_hook(lambda *a, calls=calls: calls.append(1))  # a recompute may stop early
        stats = update(exp, torch.Generator().manual_seed(0))
        hook.remove()
        assert stats["policy_grad_norm"] > 0 and stats["value_grad_norm"] > 0  # gradients reach the adapters
        assert len(calls) == (4 if checkpointing else 2)  # 2 micro-batches; checkpointing recomputes in backward
        results.append(({n: p.detach().clone() for n, p in models.policy.named_parameters() if p.requires_grad},
                        {n: p.detach().clone() for n, p in models.value.named_parameters() if p.requires_grad}))
    for plain, ckpt in zip(results[0], results[1]):
        assert plain.keys() == ckpt.keys()
        for n in plain:
            assert torch.allclose(plain[n], ckpt[n], atol=1e-6), n
