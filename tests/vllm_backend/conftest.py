"""The vLLM generation backend's tests. They run where vLLM is installed: `.venv-vllm`, made by `./setup.sh --vllm`
(vLLM pins its own transformers, so it gets an environment of its own); the README's test command runs this folder
there after the main suite. In an environment without vLLM the folder is not collected."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("vllm") is not None else ["test_*.py"]


def memory_share(gib: float = 3.0) -> float:
    """vLLM's gpu_memory_utilization that gives it about `gib` of this machine's memory (on CPUs the share counts
    main memory: the weights, the process and the KV cache must fit in it), whatever the machine's size."""
    import os

    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return round(min(0.6, gib / total), 3)


def tiny_round_files(tmp_path, tokenizer) -> None:
    """What a tiny rs+ppo round reads, under tmp_path: `policy/` (128 wide, head size 64: what vLLM's CPU attention
    kernels take), two tiny reward models `rm_helpful/` and `rm_safety/`, and `prompts.jsonl` with 6 prompts."""
    import json

    from chatalign.models import save_hf_atomic
    from chatalign.reward.model import save_reward_model
    from tests.conftest import reward_model_from_causal_lm, tiny_llama

    save_hf_atomic(tiny_llama(tokenizer, hidden=128, layers=2, heads=2, kv_heads=1), tokenizer, tmp_path / "policy")
    for name, seed in (("rm_helpful", 1), ("rm_safety", 2)):
        rm = tiny_llama(tokenizer, hidden=32, layers=1, heads=2, kv_heads=1, seed=seed)
        save_reward_model(reward_model_from_causal_lm(rm, seed=seed), tokenizer, tmp_path / name)
    prompts = [{"id": f"p{i}", "messages": [{"role": "user", "content": f"Tell me about the number {i}."}]}
               for i in range(6)]
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
