"""`chatalign chat`: the KV-cached token loop, the conversation history, which model a RUN names, and the command
(one-shot `--prompt`, and the interactive loop fed through a pipe) on a tiny random Llama with a real tokenizer."""

import json
import os
import shutil
import signal
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from chatalign.cli.chat import ChatSession, resolve_chat_model, stream_tokens
from chatalign.errors import UserError
from chatalign.text.masks import encode_prompt


@pytest.fixture(scope="module")
def model_and_tok(tiny_model_dir):
    from chatalign.models import load_causal_lm, load_tokenizer

    model = load_causal_lm(str(tiny_model_dir), dtype="float32").eval()
    return model, load_tokenizer(str(tiny_model_dir))


def sample(model, ids, seed, stop=frozenset(), n=12, temperature=1.0):
    g = torch.Generator().manual_seed(seed)
    return list(stream_tokens(model, ids, temperature=temperature, top_p=1.0, max_new_tokens=n, stop_ids=set(stop),
                              generator=g))


def test_greedy_loop_with_cache_equals_full_forward_argmax(model_and_tok):
    model, tok = model_and_tok
    prompt = encode_prompt(tok, [{"role": "user", "content": "Name three colours."}])
    got = sample(model, prompt, 0, n=10, temperature=0.0)
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(10):  # no cache: the whole sequence every step
            ids.append(int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
    assert got == ids[len(prompt):]


def test_an_end_of_turn_token_stops_the_answer(model_and_tok):
    model, tok = model_and_tok
    prompt = encode_prompt(tok, [{"role": "user", "content": "hi"}])
    free = sample(model, prompt, seed=3, n=16)
    k = next(i for i in range(2, len(free)) if free[i] not in free[:i])  # a token first drawn at step k
    assert sample(model, prompt, seed=3, stop={free[k]}, n=16) == free[:k]


def test_history_streaming_reset_and_system(model_and_tok):
    model, tok = model_and_tok
    s = ChatSession(model, tok, temperature=1.0, top_p=1.0, max_new_tokens=8, seed=1)
    pieces: list[str] = []
    first = s.reply("What is two plus two?", pieces.append)
    assert first and len(pieces) > 1 and "".join(pieces).strip() == first
    assert [m["role"] for m in s.messages] == ["user", "assistant"]
    second_prompt = tok.decode(s.prompt_ids([*s.messages, {"role": "user", "content": "And three?"}]))
    assert first in second_prompt and "What is two plus two?" in second_prompt  # the model sees the history
    s.reply("And three?")
    assert len(s.turns) == 4
    s.set_system("Answer in French.")
    assert s.messages[0] == {"role": "system", "content": "Answer in French."} and len(s.messages) == 5
    s.reset()
    assert s.messages == [{"role": "system", "content": "Answer in French."}]


def test_oldest_rounds_leave_when_the_context_is_full(model_and_tok):
    model, tok = model_and_tok
    s = ChatSession(model, tok, temperature=1.0, top_p=1.0, max_new_tokens=8, seed=2)
    s.reply("first question")
    s.reply("second question")
    messages = [*s.messages, {"role": "user", "content": "third"}]
    full = len(encode_prompt(tok, messages))
    s.max_context = full + 8 - 1  # one token short of the whole history
    ids = s.prompt_ids(messages)
    assert len(ids) + 8 <= s.max_context and "first question" not in tok.decode(ids)
    s.max_context = 5
    with pytest.raises(UserError, match="context"):
        s.prompt_ids(messages)


def write_config(d, arch):
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"architectures": [arch], "model_type": "llama"}))


def test_which_model_a_run_names(tmp_path, tiny_model_dir):
    root = tmp_path / "pipe"
    write_config(root / "sft" / "model", "LlamaForCausalLM")
    write_config(root / "reward_helpful" / "model", "LlamaForSequenceClassification")
    write_config(root / "rlhf" / "model", "LlamaForCausalLM")
    state = {"steps": {"sft": {"status": "finished"}, "reward_helpful": {"status": "finished"},
                       "rlhf": {"status": "running"}}}
    (root / "pipeline_state.json").write_text(json.dumps(state))
    assert resolve_chat_model(str(root))[0] == str(root / "sft" / "model")  # last finished chat model
    assert resolve_chat_model(str(root), "rlhf")[0] == str(root / "rlhf" / "model")
    with pytest.raises(UserError, match="reward model"):
        resolve_chat_model(str(root), "reward_helpful")
    with pytest.raises(UserError, match=r"steps: sft \(finished\), reward_helpful \(finished, reward model\), rlhf"):
        resolve_chat_model(str(root), "gatt")
    state["steps"]["sft"]["status"] = "failed"
    (root / "pipeline_state.json").write_text(json.dumps(state))
    with pytest.raises(UserError, match="--step"):
        resolve_chat_model(str(root))
    run = tmp_path / "run"
    shutil.copytree(tiny_model_dir, run / "model")
    (run / "manifest.json").write_text("{}")
    assert resolve_chat_model(str(run)) == (str(run / "model"), str(run))
    with pytest.raises(UserError, match="not a pipeline"):
        resolve_chat_model(str(run), "sft")


def chat_args(run, **kw):
    base = dict(run=str(run), step=None, system=None, prompt=None, temperature=0.8, top_p=0.9, max_new_tokens=10,
                dtype="float32", chat_template=None, seed=0)
    return SimpleNamespace(**{**base, **kw})


def expected_raw(model_dir, turns, **kw):
    """What the command prints for `turns` (None = /reset), computed in process with the same seed."""
    from chatalign.cli.chat import load_session

    session, _ = load_session(chat_args(model_dir, **kw))
    out = []
    for text in turns:
        if text is None:
            session.reset()
            continue
        pieces: list[str] = []
        session.reply(text, pieces.append)
        out.append("".join(pieces))
    return out


def test_one_shot_prompt_prints_the_answer(capsys, tiny_model_dir):
    from chatalign.cli.main import main

    assert main(["chat", str(tiny_model_dir), "--prompt", "Hello!", "--temperature", "0.8", "--max-new-tokens",
                 "10", "--dtype", "float32"]) == 0
    printed = capsys.readouterr().out
    assert printed == expected_raw(tiny_model_dir, ["Hello!"])[0] + "\n" and printed.strip()


def cli(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return [sys.executable, "-m", "chatalign.cli", "chat", *args], env


def test_interactive_mode_over_a_pipe(tiny_model_dir):
    cmd, env = cli(str(tiny_model_dir), "--temperature", "0.8", "--max-new-tokens", "10", "--dtype", "float32")
    lines = "Hello!\n\n/reset\n/wat\nHello!\n/exit\nnever answered\n"
    out = subprocess.run(cmd, input=lines, capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    a1, a2 = expected_raw(tiny_model_dir, ["Hello!", None, "Hello!"])
    assert out.stdout == f"{a1}\n{a2}\n"
    assert "(conversation cleared)" in out.stderr and "unknown command /wat" in out.stderr
    assert "Traceback" not in out.stderr
    # no library warning between the turns of a conversation (they would land in the streamed answer)
    assert "deprecated" not in out.stderr and "Warning" not in out.stderr, out.stderr[-2000:]
    eof = subprocess.run(cmd, input="Hello!\n", capture_output=True, text=True, timeout=180, env=env)
    assert eof.returncode == 0 and eof.stdout == f"{a1}\n"  # end of input ends the chat


def test_ctrl_c_leaves_cleanly(tiny_model_dir):
    cmd, env = cli(str(tiny_model_dir), "--dtype", "float32")
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    banner = proc.stderr.readline()
    while banner and not banner.startswith("chatting with"):
        banner = proc.stderr.readline()
    assert banner, "the chat ended before its banner"
    proc.send_signal(signal.SIGINT)  # the banner is printed inside the loop's Ctrl-C handling: no wait needed
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err
