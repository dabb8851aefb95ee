"""The GAtt transformation on hand-made dialogues with a fake answer function: what the model is asked, what
is kept, what is dropped, and which tokens carry loss."""

import pytest

from chatalign.errors import ConfigError
from chatalign.gatt.dialogues import Dialogue
from chatalign.gatt.instructions import Instruction
from chatalign.gatt.synthesis import (
    pass_rates,
    placements_for,
    repair_counts,
    synthesize,
    training_messages,
    training_rows,
)
from chatalign.gatt.turns import Candidate, prompt_messages, trim_to_sentence
from chatalign.text.masks import encode_chat

UPPER = Instruction("Always answer in uppercase.", {"uppercase": True})
SHORT = Instruction("Length: at most 3 words", {"word_limit": 3}, terse=True)
FRENCH = Instruction("Always answer in French.", {"language": "fr"})
D1 = Dialogue("d1", ("Hi?", "How are you?", "Bye?"))
D2 = Dialogue("d2", ("Pancakes?", "Tea?"))


class Scripted:
    """Answers from a script {(dialogue's first user text, turn): [candidate texts]}; records every call."""

    def __init__(self, script, finished=True):
        self.script, self.finished, self.calls = script, finished, []

    def __call__(self, prompts, k):
        self.calls.append(prompts)
        out = []
        for p in prompts:
            users = [m["content"] for m in p if m["role"] == "user"]
            first = users[0].split("\n\n")[-1]
            texts = self.script[(first, len(users))]
            texts = texts + [texts[-1]] * (k - len(texts))  # a one-answer script line answers k times
            out.append([Candidate(t, self.finished if not isinstance(self.finished, dict)
                                  else self.finished.get(t, True)) for t in texts[:k]])
        return out


def script_all_pass():
    return {("Hi?", 1): ["HELLO."], ("Hi?", 2): ["FINE."], ("Hi?", 3): ["GOODBYE."],
            ("Pancakes?", 1): ["Flour and eggs."], ("Pancakes?", 2): ["Green tea."]}


def test_sampling_sees_the_instruction_in_every_user_turn_batched_per_turn():
    fake = Scripted(script_all_pass())
    runs, stats = synthesize([D1, D2], [UPPER, SHORT], fake)
    assert len(fake.calls) == 3  # one call per turn, all active dialogues together
    assert [len(c) for c in fake.calls] == [2, 2, 1]  # d2 has two turns
    turn3 = fake.calls[2][0]
    assert turn3 == [
        {"role": "user", "content": "Always answer in uppercase.\n\nHi?"},
        {"role": "assistant", "content": "HELLO."},
        {"role": "user", "content": "Always answer in uppercase.\n\nHow are you?"},
        {"role": "assistant", "content": "FINE."},
        {"role": "user", "content": "Always answer in uppercase.\n\nBye?"},
    ]
    assert runs[0].answers == ["HELLO.", "FINE.", "GOODBYE."]
    assert stats["turns_answered"] == 5 and stats["turns_passing"] == 5


def test_training_rows_drop_the_instruction_after_the_first_user_turn():
    runs, _ = synthesize([D1], [UPPER], Scripted(script_all_pass()))
    rows, stats = training_rows(runs)
    assert [r.id for r in rows] == ["d1:turn1", "d1:turn2", "d1:turn3"]
    assert [m.model_dump() for m in rows[2].messages] == [
        {"role": "user", "content": "Always answer in uppercase.\n\nHi?"},
        {"role": "assistant", "content": "HELLO."},
        {"role": "user", "content": "How are you?"},
        {"role": "assistant", "content": "FINE."},
        {"role": "user", "content": "Bye?"},
        {"role": "assistant", "content": "GOODBYE."},
    ]
    assert rows[0].tags == ["gatt", "turn:1", "full", "placement:first_user", "uppercase"]
    assert stats["rows"] == 3 and stats["rows_per_turn"] == {"1": 1, "2": 1, "3": 1}


def test_system_placement_and_min_turn():
    runs, _ = synthesize([D1], [UPPER], Scripted(script_all_pass()))
    rows, stats = training_rows(runs, placement="system", min_turn=2)
    assert [r.id for r in rows] == ["d1:turn2", "d1:turn3"]
    assert stats["below_min_turn"] == 1
    msgs = [m.model_dump() for m in rows[0].messages]
    assert msgs[0] == {"role": "system", "content": "Always answer in uppercase."}
    assert [m["content"] for m in msgs if m["role"] == "user"] == ["Hi?", "How are you?"]


def failing_middle():
    s = script_all_pass()
    s[("Hi?", 2)] = ["fine."]  # fails uppercase
    return s


def test_rejection_drop_row_keeps_later_turns():
    runs, _ = synthesize([D1], [UPPER], Scripted(failing_middle()), repair=False)
    rows, stats = training_rows(runs, reject=True, on_failure="drop_row")
    assert [r.id for r in rows] == ["d1:turn1", "d1:turn3"]
    assert stats["rejected"] == 1
    assert rows[1].messages[3].content == "fine."  # the failing answer stays as context


def test_rejection_cut_dialogue_drops_everything_after_a_failure():
    runs, _ = synthesize([D1], [UPPER], Scripted(failing_middle()), repair=False)
    rows, stats = training_rows(runs, reject=True, on_failure="cut_dialogue")
    assert [r.id for r in rows] == ["d1:turn1"]
    assert (stats["rejected"], stats["cut_after_failure"]) == (1, 1)


def test_no_rejection_keeps_every_row():
    runs, _ = synthesize([D1], [UPPER], Scripted(failing_middle()), reject=False)
    rows, stats = training_rows(runs, reject=False)
    assert len(rows) == 3 and stats["rejected"] == 0


def test_candidates_the_first_passing_one_is_kept():
    s = script_all_pass()
    s[("Hi?", 2)] = ["fine.", "FINE!", "OK."]
    fake = Scripted(s)
    runs, stats = synthesize([D1], [UPPER], fake, candidates=2, reject=True)
    assert runs[0].answers[1] == "FINE!"
    assert stats["candidates_sampled"] == 6
    # without rejection the first candidate is kept even though it fails
    runs, _ = synthesize([D1], [UPPER], Scripted(s), candidates=2, reject=False)
    assert runs[0].answers[1] == "fine."
    assert runs[0].checks[1] == {"uppercase": False, "all": False}


def test_unfinished_answers_are_trimmed_and_an_empty_answer_ends_the_dialogue():
    s = script_all_pass()
    s[("Hi?", 1)] = ["HELLO THERE. AND THEN"]
    s[("Hi?", 2)] = ["NO SENTENCE END"]
    fake = Scripted(s, finished={"HELLO THERE. AND THEN": False, "NO SENTENCE END": False})
    runs, stats = synthesize([D1], [UPPER], fake)
    assert runs[0].answers == ["HELLO THERE."]
    assert runs[0].ended_early and stats["ended_early"] == 1
    assert (stats["unfinished_trimmed"], stats["turns_answered"]) == (2, 1)
    assert len(fake.calls) == 2  # no third turn for an ended dialogue
    rows, _ = training_rows(runs)
    assert [r.id for r in rows] == ["d1:turn1"]


def test_trim_to_sentence():
    assert trim_to_sentence("One. Two! Three") == "One. Two!"
    assert trim_to_sentence('He said "go." and then') == 'He said "go."'
    assert trim_to_sentence("No end here") == ""
    assert trim_to_sentence("Version 2.5 is out") == ""  # a decimal point ends no sentence
    assert trim_to_sentence("Tips:\n- rest well\n- drink wat") == "Tips:\n- rest well"  # a list: whole lines


def test_prompt_messages_placements():
    assert prompt_messages(["a", "b"], ["x"], "INST", "first_user") == [
        {"role": "user", "content": "INST\n\na"}, {"role": "assistant", "content": "x"},
        {"role": "user", "content": "b"}]
    assert prompt_messages(["a"], [], "INST", "system")[0] == {"role": "system", "content": "INST"}
    with pytest.raises(ConfigError):
        prompt_messages(["a"], [], "INST", "nowhere")


def test_loss_only_on_the_last_answer(smol_tokenizer):
    runs, _ = synthesize([D1], [UPPER], Scripted(script_all_pass()))
    msgs = training_messages(runs[0], 3)
    enc = encode_chat(smol_tokenizer, msgs, train_on="last_assistant")
    trained = smol_tokenizer.decode([t for t, m in zip(enc.input_ids, enc.loss_mask, strict=True) if m])
    assert trained == "GOODBYE.<|im_end|>"
    untrained = smol_tokenizer.decode([t for t, m in zip(enc.input_ids, enc.loss_mask, strict=True) if not m])
    assert "HELLO." in untrained and "FINE." in untrained  # earlier answers: context, loss 0
    assert untrained.count("Always answer in uppercase.") == 1


def test_pass_rates_and_bad_options():
    runs, _ = synthesize([D1], [UPPER], Scripted(failing_middle()), reject=False)
    assert pass_rates(runs) == {"all": round(2 / 3, 4), "uppercase": round(2 / 3, 4)}
    with pytest.raises(ConfigError):
        training_rows(runs, on_failure="ignore")
    with pytest.raises(ConfigError):
        training_rows(runs, min_turn=0)


def test_a_failing_answer_is_repaired_and_recorded_where_the_kind_allows():
    runs, stats = synthesize([D1], [UPPER], Scripted(failing_middle()))
    assert runs[0].answers == ["HELLO.", "FINE.", "GOODBYE."]  # "fine." uppercased
    assert runs[0].repaired == [[], ["uppercase"], []]
    assert stats["turns_repaired"] == 1 and stats["turns_passing"] == 3
    assert repair_counts(runs) == {"uppercase": 1}
    rows, row_stats = training_rows(runs)
    assert [("repaired" in r.tags) for r in rows] == [False, True, False]
    assert row_stats["rows_repaired"] == 1 and row_stats["rejected"] == 0


def test_a_passing_candidate_is_preferred_to_a_repair():
    s = script_all_pass()
    s[("Hi?", 2)] = ["fine.", "FINE!"]
    runs, stats = synthesize([D1], [UPPER], Scripted(s), candidates=2)
    assert runs[0].answers[1] == "FINE!" and stats["turns_repaired"] == 0


def test_content_kinds_are_not_repaired():
    s = {("Hi?", 1): ["Hello, how can I help you today?"]}
    runs, stats = synthesize([Dialogue("d", ("Hi?",))], [FRENCH], Scripted(s))
    assert runs[0].answers == ["Hello, how can I help you today?"] and runs[0].repaired == [[]]
    assert stats["turns_repaired"] == 0
    rows, row_stats = training_rows(runs)
    assert rows == [] and row_stats["rejected"] == 1


def test_placements_are_mixed_by_share_and_seed():
    places = placements_for(10, 0.3, seed=0)
    assert places.count("system") == 3 and places == placements_for(10, 0.3, seed=0)
    assert places != placements_for(10, 0.3, seed=1) or places != placements_for(10, 0.3, seed=2)
    assert placements_for(4, 0.0, 0) == ["first_user"] * 4 and placements_for(4, 1.0, 0) == ["system"] * 4
    runs, _ = synthesize([D1, D2], [UPPER, SHORT], Scripted(script_all_pass()))
    rows, stats = training_rows(runs, placement=["system", "first_user"])
    d1 = [r for r in rows if r.id.startswith("d1")]
    d2 = [r for r in rows if r.id.startswith("d2")]
    assert all(r.messages[0].role == "system" and "placement:system" in r.tags for r in d1)
    assert all(r.messages[0].role == "user" and r.messages[0].content.startswith("Length:") for r in d2)
    assert stats["rows_per_placement"] == {"first_user": 2, "system": 3}
    with pytest.raises(ConfigError, match="placements"):
        training_rows(runs, placement=["system"])
