"""The context-distillation gate and data transform on hand-made examples."""

from __future__ import annotations

import math

import pytest

from chatalign.data_schemas import Conversation
from chatalign.errors import ConfigError
from chatalign.safety.distill import (
    DistillCandidate,
    apply_gate,
    distill_stats,
    keep_distilled,
    settle_answer,
    training_conversations,
    trim_to_sentence,
    with_safety_context,
)

CTX = "SAFETY CONTEXT"


@pytest.mark.parametrize("with_, without, margin, kept", [
    (0.5, 0.2, 0.0, True),      # gain 0.3 > 0
    (0.2, 0.5, 0.0, False),     # the preprompt made it worse
    (0.4, 0.4, 0.0, False),     # a tie is not an improvement
    (-1.0, -3.0, 1.5, True),    # gain 2.0 > 1.5 (raw RM units can be negative)
    (1.0, 0.0, 1.0, False),     # gain equal to the margin is not enough
    (math.nan, 0.0, 0.0, False),
])
def test_keep_distilled(with_, without, margin, kept):
    assert keep_distilled(with_, without, margin) is kept


def cand(i, cat, with_, without, answer="I can't help with that.", style="direct"):
    return DistillCandidate(id=f"p{i}", risk_category=cat, attack_style=style,
                            messages=[{"role": "user", "content": f"bad request {i}"}],
                            answer_with=answer, answer_without="Sure, here is how.", score_with=with_,
                            score_without=without)


def test_gate_and_training_rows():
    cands = [cand(1, "illicit_criminal", 1.0, -1.0), cand(2, "illicit_criminal", -2.0, 0.5),
             cand(3, "hateful_harmful", 0.5, 0.0, style="role_play"),
             cand(4, "hateful_harmful", None, None, answer=None)]
    apply_gate(cands, margin=0.0)
    assert [c.kept for c in cands] == [True, False, True, False]
    assert [c.reason for c in cands] == ["kept", "no_gain", "kept", "unusable_answer"]
    rows = training_conversations(cands)
    assert [r["id"] for r in rows] == ["distill-p1", "distill-p3"]
    assert rows[0]["messages"] == [{"role": "user", "content": "bad request 1"},
                                   {"role": "assistant", "content": "I can't help with that."}]
    assert rows[1]["tags"] == ["safety_distill", "hateful_harmful", "role_play"]
    for r in rows:
        Conversation.model_validate(r)  # a valid SFT row
    apply_gate(cands, margin=1.0)  # only p1's gain (2.0) clears a margin of 1
    assert [c.kept for c in cands] == [True, False, False, False]


def test_stats_count_kept_and_gains_per_category():
    cands = apply_gate([cand(1, "illicit_criminal", 1.0, -1.0), cand(2, "illicit_criminal", -2.0, 0.5),
                        cand(3, "hateful_harmful", 0.5, 0.0), cand(4, "hateful_harmful", None, None, answer=None)],
                       0.0)
    st = distill_stats(cands)
    assert st["all"]["candidates"] == 4 and st["all"]["kept"] == 2 and st["all"]["unusable"] == 1
    assert st["all"]["mean_gain"] == pytest.approx((2.0 - 2.5 + 0.5) / 3)
    assert st["all"]["mean_gain_kept"] == pytest.approx(1.25)
    ill = st["by_category"]["illicit_criminal"]
    assert (ill["kept"], ill["kept_fraction"], ill["mean_gain"]) == (1, 0.5, pytest.approx(-0.25))
    assert st["by_category"]["hateful_harmful"]["kept_fraction"] == 0.5
    assert st["by_style"]["direct"]["candidates"] == 4
    assert cands[0].to_dict()["gain"] == 2.0 and cands[3].to_dict()["gain"] is None


def test_context_as_system_message():
    msgs = [{"role": "user", "content": "q"}]
    assert with_safety_context(msgs, CTX, "system") == [{"role": "system", "content": CTX},
                                                        {"role": "user", "content": "q"}]
    assert msgs == [{"role": "user", "content": "q"}]  # the input is not modified
    with_sys = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "q"}]
    assert with_safety_context(with_sys, CTX, "system")[0] == {"role": "system", "content": f"{CTX}\n\nBe brief."}


def test_context_as_prefix_of_the_last_user_turn():
    msgs = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"},
            {"role": "user", "content": "now the bad request"}]
    out = with_safety_context(msgs, CTX, "user_prefix")
    assert out[:2] == msgs[:2] and out[2]["content"] == f"{CTX}\n\nnow the bad request"
    with pytest.raises(ConfigError):
        with_safety_context(msgs, CTX, "assistant")


def test_trim_and_settle():
    assert trim_to_sentence("I can't help. You could ask a law") == "I can't help."
    assert trim_to_sentence("Really? Yes!\" And then") == "Really? Yes!\""
    assert trim_to_sentence("no sentence end here") == ""
    assert trim_to_sentence("Version 2.5 is out") == ""  # a decimal point ends no sentence
    assert settle_answer("  Done. Next", finished=True, unfinished="drop") == "Done. Next"
    assert settle_answer("Done. Next", finished=False, unfinished="keep") == "Done. Next"
    assert settle_answer("Done. Next", finished=False, unfinished="trim_to_sentence") == "Done."
    assert settle_answer("Done. Next", finished=False, unfinished="drop") is None
    assert settle_answer("cut mid", finished=False, unfinished="trim_to_sentence") is None
    assert settle_answer("   ", finished=True, unfinished="keep") is None
    with pytest.raises(ConfigError):
        settle_answer("x", True, "pad")
