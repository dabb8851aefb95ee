"""The rule annotator and the judge annotator: verdicts worked by hand from the rules, the judge's verdict
mapped through its safety labels (a pair whose chosen answer is unsafe and the other safe is dropped, as the
paper keeps none), and the judge run for real on the embedded model."""

import pytest

from chatalign.annotate.labels import to_preference
from chatalign.data_schemas import Comparison
from chatalign.judges.llm import PairVerdict
from chatalign.prefs.annotators import Verdict, judge_verdicts, rule_verdict


def comp(a: str, b: str, check: dict | None, category: str = "helpfulness") -> Comparison:
    return Comparison(id="c", prompt=[{"role": "user", "content": "q"}], answers=[{"text": a}, {"text": b}],
                      check=check, category=category)


@pytest.mark.parametrize("a, b, check, category, expected", [
    ("The answer is 12.", "The answer is 13.", {"type": "number", "value": 12}, "helpfulness",
     Verdict(0, "better", "both_safe")),
    ("It is 5.", "It is 12.", {"type": "number", "value": 12}, "helpfulness", Verdict(1, "better", "both_safe")),
    ("Sure, here is how.", "I can't help with that.", {"type": "refusal"}, "safety",
     Verdict(1, "better", "better_safe_other_not")),
    ("It is 12.", "12, it is 12.", {"type": "number", "value": 12}, "helpfulness", "tie_pass"),
    ("It is 3.", "It is 4.", {"type": "number", "value": 12}, "helpfulness", "tie_fail"),
    ("a", "b", None, "helpfulness", "no_rule"),
])
def test_rule_verdicts(a, b, check, category, expected):
    assert rule_verdict(comp(a, b, check, category)) == expected


class ScriptedJudge:
    """The judge's interface with fixed answers: the mapping from its verdicts is what is tested here."""

    def __init__(self, pairs, safe):
        self.pairs, self.safe = pairs, safe

    def compare(self, items):
        return self.pairs[:len(items)]

    def safety(self, items):
        return self.safe[:len(items)]


def test_judge_verdicts_follow_the_safety_labels_and_drop_contradictions():
    comps = [comp(f"a{k}", f"b{k}", None) for k in range(4)]
    pairs = [PairVerdict("a", "slightly_better", "ok"), PairVerdict("b", None, "ok"),
             PairVerdict("a", "better", "ok"), PairVerdict(None, None, "inconsistent")]
    safe = [True, True, False, True] + [False, True, True, True]  # answers A of the 4, then answers B
    got = judge_verdicts(ScriptedJudge(pairs, safe), comps)
    assert got == [Verdict(0, "slightly_better", "better_safe_other_not"), Verdict(1, "better", "both_safe"),
                   "judge_chose_the_unsafe_answer", "judge_inconsistent"]
    pref = to_preference(comps[0], got[0].better, got[0].strength, got[0].safety, "judge:llm:x", None)
    assert (pref.chosen, pref.chosen_safe, pref.rejected_safe) == ("a0", True, False)
    assert pref.annotation.annotator == "judge:llm:x" and pref.annotation.shown_first is None


@pytest.mark.slow
def test_the_judge_annotator_on_the_embedded_model():
    """A real local judge: every comparison gets a verdict or a named reason, and the verdicts are well-formed
    preferences (which answer a 135M judge prefers is not asserted: it is not a good judge)."""
    from chatalign.judges.llm import LLMJudgeConfig, load_llm_judge

    judge = load_llm_judge(LLMJudgeConfig(backend="hf", model="embedded", max_new_tokens=24, batch_size=8))
    comps = [comp("Paris is the capital of France.", "I think it is Lyon.", None),
             comp("I can't help you hurt someone.", "Mix bleach and ammonia.", None, "safety")]
    out = judge_verdicts(judge, comps)
    assert len(out) == 2
    for c, v in zip(comps, out, strict=True):
        if isinstance(v, Verdict):
            pref = to_preference(c, v.better, v.strength, v.safety, "judge:llm:embedded", None)
            assert {pref.chosen, pref.rejected} == {a.text for a in c.answers}
        else:
            assert v.startswith("judge_")
