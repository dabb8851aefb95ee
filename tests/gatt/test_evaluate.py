"""Adherence by turn (Table 30 shape) from hand-made runs; dialogue selection; the prompt window; the table."""

import pytest

from chatalign.errors import DataError
from chatalign.gatt.dialogues import Dialogue, load_dialogues
from chatalign.gatt.evaluate import (
    EvalGroup,
    adherence_by_turn,
    format_table,
    group_result,
    limit_long_dialogues,
    retention,
    select_dialogues,
    summarize,
)
from chatalign.gatt.instructions import Instruction
from chatalign.gatt.prompt_window import drop_second_round, fit_prompt
from chatalign.gatt.turns import Candidate, DialogueRun, run_dialogues

UPPER = Instruction("Always answer in uppercase.", {"uppercase": True})
UPPER_SHORT = Instruction("Format: uppercase. Length: at most 2 words",
                          {"word_limit": 2, "uppercase": True}, terse=True)


def fading(prompts, k):
    """Uppercase while the instruction is in the prompt's last user message or within 2 rounds of it."""
    out = []
    for p in prompts:
        users = [m for m in p if m["role"] == "user"]
        text = "YES SIR." if len(users) <= 2 else "no."
        out.append([Candidate(text)] * k)
    return out


def test_adherence_by_turn_counts_dialogues_reaching_each_turn():
    dialogues = [Dialogue("a", ("1", "2", "3", "4")), Dialogue("b", ("1", "2"))]
    runs, _ = run_dialogues(dialogues, [UPPER, UPPER_SHORT], fading, instruction_in="first_user")
    table = adherence_by_turn(runs)
    assert table[1] == {"n": 2, "all": 1.0, "word_limit": 1.0, "n_word_limit": 1, "uppercase": 1.0,
                        "n_uppercase": 2}
    assert table[3] == {"n": 1, "all": 0.0, "uppercase": 0.0, "n_uppercase": 1}
    assert sorted(table) == [1, 2, 3, 4]


def test_evaluation_prompts_carry_the_instruction_only_once():
    seen = []

    def record(prompts, k):
        seen.extend(prompts)
        return [[Candidate("OK.")] for _ in prompts]

    run_dialogues([Dialogue("a", ("q1", "q2", "q3"))], [UPPER], record, instruction_in="first_user")
    last = seen[-1]
    assert sum("uppercase" in m["content"] for m in last) == 1
    assert last[0]["content"].startswith("Always answer in uppercase.")
    seen.clear()
    run_dialogues([Dialogue("a", ("q1", "q2"))], [UPPER], record, instruction_in="system")
    assert seen[-1][0] == {"role": "system", "content": "Always answer in uppercase."}
    assert all("uppercase" not in m["content"] for m in seen[-1][1:])


def test_an_answer_cut_by_the_token_limit_fails_the_length_rule_only():
    def cut(prompts, k):
        return [[Candidate("YES SIR", finished=False)] * k for _ in prompts]

    runs, stats = run_dialogues([Dialogue("a", ("q1",))], [UPPER_SHORT], cut, instruction_in="first_user")
    assert runs[0].checks[0] == {"word_limit": False, "uppercase": True, "all": False}
    assert stats["unfinished_kept"] == 1


def test_select_dialogues_prefers_those_reaching_the_last_turn():
    ds = [Dialogue(str(n), tuple("q" * n)) for n in (3, 20, 7, 20, 12)]
    assert [d.id for d in select_dialogues(ds, 4, 20)] == ["20", "20", "12", "7"]
    assert [d.id for d in select_dialogues(ds, 10, 6)] == ["20", "7", "20", "12", "3"]


def test_only_n_long_dialogues_run_to_the_last_turn():
    ds = [Dialogue(str(i), tuple(f"q{k}" for k in range(20))) for i in range(4)]
    out = limit_long_dialogues(ds, [20, 2, 6, 4], n_long=1)
    assert [len(d.user_turns) for d in out] == [20, 6, 6, 6]
    assert out[1].user_turns == ds[1].user_turns[:6]
    assert limit_long_dialogues(ds, [2, 4, 6, 20], None) == ds
    assert limit_long_dialogues(ds, [20], 0) == ds  # a single reported turn: nothing to stop before
    assert [len(d.user_turns) for d in limit_long_dialogues(ds, [2, 10], None)] == [10] * 4  # none past the last


def test_drop_second_round_keeps_system_and_first_round():
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "u1"},
            {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"},
            {"role": "assistant", "content": "a2"}, {"role": "user", "content": "u3"}]
    assert [m["content"] for m in drop_second_round(msgs)] == ["S", "u1", "a1", "u3"]
    assert drop_second_round(msgs[:4]) is None


def test_fit_prompt_drops_middle_rounds_until_it_fits(smol_tokenizer):
    msgs = [{"role": "user", "content": "INSTRUCTION. u1"}]
    for i in range(2, 8):
        msgs += [{"role": "assistant", "content": f"answer {i - 1} " * 10}, {"role": "user", "content": f"u{i}"}]
    full, dropped = fit_prompt(smol_tokenizer, msgs, None)
    assert dropped == 0
    ids, dropped = fit_prompt(smol_tokenizer, msgs, len(full) - 30)
    assert dropped >= 1 and len(ids) <= len(full) - 30
    text = smol_tokenizer.decode(ids)
    assert "INSTRUCTION. u1" in text and "u7" in text and "u2<" not in text


def test_format_table_has_the_paper_turns():
    runs, _ = run_dialogues([Dialogue("a", tuple(f"q{i}" for i in range(6)))], [UPPER], fading,
                            instruction_in="first_user")
    res = {"by_turn": {str(t): r for t, r in adherence_by_turn(runs).items()}}
    table = format_table({"base": res}, [2, 4, 6, 20])
    lines = table.strip().splitlines()
    assert lines[0] == "| model | turn | n | all | uppercase |"
    assert lines[2] == "| base | 2 | 1 | 100% | 100% (1) |"
    assert lines[3] == "| base | 4 | 1 | 0% | 0% (1) |"
    assert lines[5] == "| base | 20 | 0 | - | - |"


def test_n_segments_describes_the_dialogue_counts():
    from chatalign.gatt.report import n_segments

    by_turn = {str(t): {"n": 10 if t <= 6 else 2} for t in range(1, 21)}
    assert n_segments(by_turn) == "n=10 (turns 1-6), n=2 (turns 7-20)"
    assert n_segments({"1": {"n": 3}}) == "n=3 (turn 1)"


def test_load_dialogues_both_formats(tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_text('{"id": "x", "user_turns": ["hi", "bye"]}\n')
    assert load_dialogues(a) == [Dialogue("x", ("hi", "bye"))]
    b = tmp_path / "b.jsonl"
    b.write_text('{"messages": [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"},'
                 ' {"role": "user", "content": "u2"}, {"role": "assistant", "content": "a2"}]}\n')
    assert load_dialogues(b)[0].user_turns == ("u1", "u2")
    c = tmp_path / "c.jsonl"
    c.write_text('{"id": "x", "user_turns": ["hi", ""]}\n')
    with pytest.raises(DataError, match=r"c.jsonl:1: user_turns.1"):
        load_dialogues(c)


def test_summary_means_turns_4_to_last_and_takes_the_last():
    by_turn = {str(t): {"n": 3 if t <= 6 else 1, "all": 1.0 if t <= 4 else 0.5, "uppercase": 0.0,
                        "n_uppercase": 2 if t <= 6 else 1} for t in range(1, 9)}
    s = summarize(by_turn)
    assert s == {"mean_from": (1.0 + 0.5 * 4) / 5, "last": 0.5, "last_turn": 8, "n_last": 1, "first": 4}
    assert summarize(by_turn, "uppercase")["mean_from"] == 0.0
    assert summarize({"1": {"n": 2, "all": 1.0}})["mean_from"] is None  # no turn from 4 on
    assert summarize({}, "lowercase")["last"] is None


def test_groups_run_in_one_pass_and_split_by_suite_and_placement():
    seen = []

    def record(prompts, k):
        seen.append(len(prompts))
        return [[Candidate("YES SIR." if p[0]["role"] == "system" else "no.")] for p in prompts]

    d = [Dialogue("a", ("q1", "q2", "q3", "q4")), Dialogue("b", ("q1", "q2"))]
    groups = [EvalGroup("in_distribution", "system", d, [UPPER, UPPER]),
              EvalGroup("in_distribution", "first_user", d, [UPPER, UPPER])]
    runs, _ = run_dialogues([*d, *d], [UPPER] * 4, record, instruction_in=["system"] * 2 + ["first_user"] * 2)
    assert seen == [4, 4, 2, 2]  # one batched call per turn over both groups
    res = {g.name: group_result(g, runs[i * 2:(i + 1) * 2]) for i, g in enumerate(groups)}
    assert res["in_distribution/system"]["by_turn"]["4"]["all"] == 1.0
    assert res["in_distribution/first_user"]["summary"]["all"]["mean_from"] == 0.0
    assert res["in_distribution/system"]["summary"]["uppercase"]["n_last"] == 1


def _run(passes):
    return DialogueRun(Dialogue("d", tuple("q" * len(passes))), UPPER, ["a"] * len(passes),
                       [{"all": ok, "uppercase": ok} for ok in passes])


def test_retention_follows_only_the_dialogues_kept_at_turn_1():
    runs = [_run([True, True, True, False, True]), _run([True, False, False, False]),
            _run([False, True, True, True, True])]  # not kept at turn 1: left out
    # turns 4-5: turn 4 both kept dialogues fail (0/2), turn 5 only the first answers and keeps it (1/1)
    assert retention(runs) == {"kept_at_1": 2, "mean_from": 0.5, "last_turn": 5}
    # turns 2-5: 1/2, 1/2, 0/2, 1/1
    assert retention(runs, first=2)["mean_from"] == (0.5 + 0.5 + 0.0 + 1.0) / 4
    assert retention([_run([False] * 6)]) == {"kept_at_1": 0, "mean_from": None, "last_turn": None}
    assert retention([_run([True, True])])["mean_from"] is None  # no turn from 4 on
