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
