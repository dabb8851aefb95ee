"""The vLLM generation backend's tests. They run where vLLM is installed: `.venv-vllm`, made by `./setup.sh --vllm`
(vLLM pins its own transformers, so it gets an environment of its own); the README's test command runs this folder
there after the main suite. In an environment without vLLM the folder is not collected."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("vllm") is not None else ["test_*.py"]
