"""`chatalign chat --backend vllm`: answers streamed token by token from vLLM's engine, the same greedy answer as
the native decode loop, the same answers again for the same seed."""

from __future__ import annotations

from types import SimpleNamespace

from tests.vllm_backend.conftest import memory_share


def chat_args(**kw):
    base = dict(run="embedded", step=None, system=None, prompt=None, temperature=0.0, top_p=0.9, max_new_tokens=24,
                dtype="float32", chat_template=None, seed=0, backend="vllm", memory_share=memory_share())
    return SimpleNamespace(**{**base, **kw})


def test_the_greedy_answer_streams_from_vllm_as_the_native_loop_writes_it():
    from chatalign.cli.chat import load_session

    question = "What is the capital of France?"
    native, label = load_session(chat_args(backend="native"))
    assert "vLLM" not in label
    expected = native.reply(question)
    del native
    session, label = load_session(chat_args())
    assert label.endswith("vLLM)")
    pieces: list[str] = []
    try:
        answer = session.reply(question, pieces.append)
        assert len(pieces) > 3 and "".join(pieces).strip() == answer  # streamed in pieces, not in one block
        assert answer == expected
        # sampled turns: one seed per turn, so the same conversation again gives the same answers
        session.temperature = 1.0
        conversation = ("Name a colour.", "And another one?", "Why that one?")
        session.reset()
        first = [session.reply(q) for q in conversation]
        session.reset()
        assert [session.reply(q) for q in conversation] == first
        assert len(set(first)) == 3
    finally:
        session.engine.close()
