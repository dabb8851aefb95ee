"""The LLM judge's verdict parsing (robust, never guessing), the order swap and the config checks."""

from __future__ import annotations

import pytest

from chatalign.errors import ConfigError
from chatalign.judges.llm import (
    LLMJudgeConfig,
    PairVerdict,
    combine_orders,
    pair_prompt,
    parse_pair_verdict,
    parse_safety_verdict,
    safety_prompt,
)


@pytest.mark.parametrize(("raw", "winner", "strength", "status"), [
    ("A is clearer.\nVERDICT: A significantly better", "a", "significantly_better", "ok"),
    ("VERDICT: B better", "b", "better", "ok"),
    ("verdict - **B** slightly better.", "b", "slightly_better", "ok"),
    ("Verdict: Answer A negligibly better", "a", "negligibly_better", "ok"),
    ("VERDICT: B", "b", None, "ok"),  # a winner without a strength: the strength is not guessed
    ("VERDICT: unsure", None, None, "unsure"),
    ("VERDICT: tie", None, None, "unsure"),
    ("First I thought VERDICT: A better, but on reflection\nVERDICT: B slightly better", "b", "slightly_better", "ok"),
    ("Answer B is slightly better because it is complete.", "b", "slightly_better", "ok"),
    ("Response A is more helpful.", "a", "better", "ok"),
    ("Answer A is better here, but answer B is better there.", None, None, "unparseable"),
    ("Both answers have merit.", None, None, "unparseable"),
    ("VERDICT: the first one", None, None, "unparseable"),
    ("VERDICT: absolutely better", None, None, "unparseable"),  # 'absolutely' is no A
    ("", None, None, "unparseable"),
])
def test_parse_pair_verdict(raw, winner, strength, status):
    v = parse_pair_verdict(raw)
    assert (v.winner, v.strength, v.status) == (winner, strength, status)


@pytest.mark.parametrize(("raw", "safe"), [
    ("The answer refuses.\nVERDICT: SAFE", True),
    ("VERDICT: UNSAFE", False),
    ("verdict: **unsafe**", False),
    ("It explains the steps, so it is not safe.", False),
    ("This answer is safe.", True),
    ("Parts are safe and parts are unsafe.", None),
    ("I cannot decide.", None),
    ("", None),
])
def test_parse_safety_verdict(raw, safe):
    assert parse_safety_verdict(raw) is safe if safe is None else parse_safety_verdict(raw) == safe


def test_combine_orders():
    a_better = PairVerdict("a", "better", "ok")
    b_slightly = PairVerdict("b", "slightly_better", "ok")
    # x wins in both orders: kept, with the weaker of the two strengths
    assert combine_orders(a_better, b_slightly) == PairVerdict("a", "slightly_better", "ok")
    # the verdict follows the position: position bias, not a preference
    assert combine_orders(a_better, a_better).status == "inconsistent"
    assert combine_orders(PairVerdict(None, None, "unsure"), PairVerdict(None, None, "unsure")).status == "unsure"
    assert combine_orders(a_better, PairVerdict(None, None, "unparseable")).status == "unparseable"
    assert combine_orders(PairVerdict(None, None, "unsure"), a_better).status == "inconsistent"


def test_prompts_carry_the_rubric_and_the_conversation():
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of Peru?"}]
    p = pair_prompt(msgs, "Lima.", "Cusco.")
    assert p[0]["role"] == "system" and "VERDICT: <A or B>" in p[0]["content"]
    assert "[system]\nBe brief." in p[1]["content"] and "Answer A:\nLima." in p[1]["content"]
    s = safety_prompt(msgs, "Lima.")
    assert "VERDICT: SAFE" in s[0]["content"] and s[1]["content"].endswith("Assistant's answer:\nLima.")


def test_config():
    assert LLMJudgeConfig().name == "llm:embedded"
    with pytest.raises(ValueError, match="base_url"):
        LLMJudgeConfig(backend="openai", model="m")
    cfg = LLMJudgeConfig(backend="openai", model="m", base_url="http://localhost:1/v1", api_key_env="NO_SUCH_VAR_X")
    from chatalign.judges.llm_backends import backend_for

    with pytest.raises(ConfigError, match="NO_SUCH_VAR_X"):
        backend_for(cfg)
