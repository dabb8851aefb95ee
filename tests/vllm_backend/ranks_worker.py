"""Run by test_several_ranks.py under torchrun (2 CPU ranks, gloo; not a test module): vLLM under a launch of
several ranks, an engine per rank. Writes report-rank<R>.json per rank in the cwd.

`sync EMBEDDED_DIR`: the embedded model partitioned with DeepSpeed ZeRO-3 (a training engine, as PPO's policy);
each rank asks for greedy answers to its share of the prompts through PPO's sampler, before and after a change of
the partitioned weights that changes the greedy answers, and computes its native answers on the gathered weights.
`round CONFIG_JSON`: a whole rs+ppo round (config from the test), the RS fine-tune and PPO under ZeRO-3."""

import json
import os
import sys
from types import SimpleNamespace

import torch

from chatalign.rollout.vllm_engine import VLLMEngine
from chatalign.training.distributed import DistContext, leave_process_group

PROMPTS = ["cats", "dogs", "rain", "tea", "maps", "jazz", "owls"]  # 7: the ranks' shares differ in size


def spy_on_engines(seen: dict) -> None:
    """Count this rank's engine starts and the prompts of each of its generations."""
    start, rollouts = VLLMEngine._start, VLLMEngine.rollouts
    VLLMEngine._start = lambda self: seen["starts"].append(self.model_path) or start(self)

    def counted(self, tokenizer, prompt_ids, **kw):
        seen["generations"].append(len(prompt_ids))
        return rollouts(self, tokenizer, prompt_ids, **kw)

    VLLMEngine.rollouts = counted


def zero3_policy(path: str, dist):
    import deepspeed

    from chatalign.models import load_causal_lm
    from chatalign.training.config import DeepSpeedConfig, OptimConfig

    policy = load_causal_lm(path, "float32")
    config = dist.deepspeed_config(DeepSpeedConfig(enabled=True, zero_stage=3), OptimConfig(grad_clip=None), 1)
    engine, _, _, _ = deepspeed.initialize(model=policy, optimizer=torch.optim.AdamW(policy.parameters(), lr=1e-5),
                                           config=config)
    return engine, policy


def sync(path: str, memory_share: float, dist) -> dict:
    import deepspeed
    from deepspeed.runtime.zero.stage3 import unwrap_model_for_generation

    from chatalign.models import load_tokenizer
    from chatalign.rlhf.ppo.sampler import PolicySampler, ppo_generator
    from chatalign.rollout.engine import generate_rollouts
    from chatalign.rollout.generation_config import GenerationConfig
    from chatalign.text.masks import encode_prompt
    from chatalign.training.config import ModelConfig
    from chatalign.training.distributed import share

    engine, policy = zero3_policy(path, dist)
    tok = load_tokenizer(path)
    models = SimpleNamespace(policy=policy, tokenizer=tok)
    generation = GenerationConfig(backend="vllm", memory_share=memory_share, max_model_len=512)
    generator = ppo_generator(models, generation, path, ModelConfig(name=path, dtype="float32"), dist)
    sampler = PolicySampler(models, generator, max_new_tokens=12, temperature=0.0, top_p=1.0, batch_size=8,
                            return_logprobs=True)
    ids = share([encode_prompt(tok, [{"role": "user", "content": f"Write one sentence about {w}."}])
                 for w in PROMPTS], dist)
    with unwrap_model_for_generation(engine):
        before = sampler(ids, 0)
    layer = [p for n, p in policy.named_parameters() if "layers.10.mlp" in n]
    with deepspeed.zero.GatheredParameters(layer, modifier_rank=0), torch.no_grad():
        if dist.is_main:  # an update of the partitioned weights, made on rank 0 and scattered to the shards
            for p in layer:
                p.mul_(-3.0)
    with unwrap_model_for_generation(engine):
        after = sampler(ids, 0)
        alone = sampler(ids if dist.is_main else [], 0)  # rank 1 asks for nothing and still takes part
        native = generate_rollouts(policy, tok, ids, max_new_tokens=12, temperature=0.0, batch_size=8)
    generator.close()
    answers = lambda rows: [r.response_ids for r in rows]  # noqa: E731
    return {"before": answers(before), "after": answers(after), "native": answers(native),
            "after_logprobs": [r.logprobs for r in after], "native_logprobs": [r.logprobs for r in native],
            "alone": answers(alone)}


def round_(config_file: str) -> dict:
    from chatalign.rlhf.config import RLHFRoundConfig
    from chatalign.rlhf.round import run_round

    cfg = RLHFRoundConfig.model_validate(json.loads(open(config_file).read()))
    summary = run_round(cfg, progress=False)
    return {"ppo_iterations": summary["ppo_iterations"], "rs_samples": summary["rs_samples"]}


if __name__ == "__main__":
    torch.set_num_threads(1)
    seen = {"starts": [], "generations": []}
    spy_on_engines(seen)
    dist = DistContext.from_env()
    mode = sys.argv[1]
    out = sync(sys.argv[2], float(sys.argv[3]), dist) if mode == "sync" else round_(sys.argv[2])
    leave_process_group()
    rank = int(os.environ.get("RANK", "0"))
    open(f"report-rank{rank}.json", "w").write(json.dumps({"rank": rank, **out, **seen}))
