"""The two trained networks of PPO (policy, value model) as training backends: their forwards, AdamW
optimizers, and plain torch or DeepSpeed engines (several ranks, or `ppo.deepspeed.enabled`)."""

from __future__ import annotations

import torch

from chatalign.errors import ConfigError
from chatalign.training.backend import Backend, EngineBackend, TorchBackend
from chatalign.training.config import OptimConfig


def build_optimizers(models, lr: float, value_lr: float | None, betas, eps: float,
                     weight_decay: float) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """AdamW for each network (paper: beta 0.9/0.95, eps 1e-5, wd 0.1; no decay on norms and biases)."""
    from chatalign.training.loop import build_optimizer

    def make(module, rate):
        cfg = OptimConfig(lr=rate, weight_decay=weight_decay, betas=tuple(betas), eps=eps, schedule="constant")
        return build_optimizer(list(module.named_parameters()), cfg)

    return make(models.policy, lr), make(models.value, value_lr or lr)


def ppo_backends(models, cfg, dist) -> tuple[Backend, Backend]:
    """(policy, value) backends. Checkpoints and the best policy name weights as the HF models do."""
    from chatalign.rlhf.ppo.forward import PolicyForward, ValueForward

    use_engines = dist.use_deepspeed(cfg.deepspeed)
    if use_engines and models.quantized:
        raise ConfigError("ppo.lora.quantize: 4bit (QLoRA) runs in one process without DeepSpeed: its 4-bit "
                          "weights cannot be partitioned; run PPO in one process, or without quantize")
    o = cfg.optim
    policy_opt, value_opt = build_optimizers(models, o.lr, o.value_lr, o.betas, o.eps, o.weight_decay)
    pairs = ((PolicyForward(models.policy), policy_opt, models.policy), (ValueForward(models.value), value_opt,
                                                                         models.value))
    if not use_engines:
        return tuple(TorchBackend(fwd, opt, grad_clip=o.grad_clip, state_module=m) for fwd, opt, m in pairs)
    # the DeepSpeed config only reads grad_clip from the optimizer section: the lr lives in the torch optimizers
    clip, micro = OptimConfig(grad_clip=o.grad_clip), cfg.micro_batch or cfg.minibatch
    return tuple(EngineBackend(dist.deepspeed_engine(fwd, opt, None, cfg.deepspeed, clip, micro), opt,
                               cfg.deepspeed.zero_stage, state_module=m) for fwd, opt, m in pairs)
