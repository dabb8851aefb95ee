"""Near-duplicate detection between evaluation and training texts (word-3-gram Jaccard), and `chatalign data
overlap`, which lists the pairs by file and line and exits 1 when there are any."""

import json

import pytest

from chatalign.cli.main import main
from chatalign.text.overlap import Located, find_overlaps, jaccard, located_texts, texts_of, word_trigrams

TEN = "how do i keep my basil plant alive in winter"  # 10 words, 8 trigrams


def test_trigrams_are_lowercased_words_with_hyphens_split():
    assert word_trigrams("How do I hard-boil eggs?") == {
        ("how", "do", "i"), ("do", "i", "hard"), ("i", "hard", "boil"), ("hard", "boil", "eggs")}
    assert word_trigrams("Hard boil eggs") == word_trigrams("hard-boil EGGS!")
    assert word_trigrams("Two words") == frozenset()


def test_jaccard_worked_by_hand():
    last = TEN.replace("winter", "summer")  # 1 of 8 trigrams changes: 7 shared, 9 in the union
    assert jaccard(word_trigrams(TEN), word_trigrams(last)) == pytest.approx(7 / 9)
    middle = TEN.replace("basil", "mint")  # 3 of 8 change: 5 shared, 11 in the union
    assert jaccard(word_trigrams(TEN), word_trigrams(middle)) == pytest.approx(5 / 11)
    assert jaccard(frozenset(), frozenset()) == 0.0


def test_texts_are_what_a_model_sees_not_labels():
    row = {"id": "a b c d", "prompt": [{"role": "user", "content": "q"}], "chosen": "yes", "tags": ["x y z"],
           "source": "s t u", "check": {"type": "max words here"}, "user_turns": ["one", "two"]}
    assert sorted(texts_of(row)) == sorted(["user", "q", "yes", "one", "two"])


def test_pairs_at_or_above_the_threshold_most_similar_first():
    train = [Located("t", 1, TEN), Located("t", 2, TEN.replace("basil", "mint")), Located("t", 3, "unrelated words here")]
    evals = [Located("e", 1, TEN.replace("winter", "summer")), Located("e", 2, TEN.upper())]
    found = find_overlaps(evals, train, threshold=0.75)
    assert [(o.eval_text.line, o.train_text.line, o.similarity) for o in found] == [(2, 1, 1.0), (1, 1, 0.7778)]
    # at 0.4 the mint question joins against the unchanged one (5/11), not against "summer" (4 shared of 12)
    assert [(o.eval_text.line, o.train_text.line) for o in find_overlaps(evals, train, threshold=0.4)] == [
        (2, 1), (1, 1), (2, 2)]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_cli_lists_file_and_line_and_exits_1_on_overlap(tmp_path, capsys):
    train = tmp_path / "train"
    train.mkdir()
    _write(train / "a.jsonl", [{"messages": [{"role": "user", "content": "Why is my sourdough so dense?"}]},
                               {"messages": [{"role": "user", "content": TEN}]}])
    ev = _write(tmp_path / "eval.jsonl", [{"messages": [{"role": "user", "content": "Tell me a joke please now"}]},
                                          {"prompt": [{"role": "user", "content": TEN.capitalize() + "?"}]}])
    assert main(["data", "overlap", "--eval", str(ev), "--train", str(train)]) == 1
    out, err = capsys.readouterr()
    assert "1.00" in out and "eval.jsonl:2" in out and "a.jsonl:2" in out and "eval.jsonl:1" not in out
    assert "1 pair(s)" in err and "1 evaluation row(s)" in err
    clean = _write(tmp_path / "clean.jsonl", [{"messages": [{"role": "user", "content": "Tell me a joke please now"}]}])
    assert main(["data", "overlap", "--eval", str(clean), "--train", str(train), "--json"]) == 0
    assert capsys.readouterr().out == ""


def test_cli_user_mistakes_are_one_clear_line(tmp_path, capsys):
    good = _write(tmp_path / "good.jsonl", [{"text": "a b c d"}])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a b c d"}\n{not json\n')
    assert main(["data", "overlap", "--eval", str(bad), "--train", str(good)]) == 2
    assert "bad.jsonl:2: not a JSON line" in capsys.readouterr().err
    assert main(["data", "overlap", "--eval", str(good), "--train", str(good)]) == 2
    assert "both as evaluation and as training" in capsys.readouterr().err
    assert main(["data", "overlap", "--eval", str(good), "--train", str(tmp_path / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["data", "overlap", "--eval", str(good), "--train", str(good), "--threshold", "1.5"]) == 2
    assert "--threshold" in capsys.readouterr().err


def test_located_texts_skip_texts_under_three_words(tmp_path):
    f = _write(tmp_path / "x.jsonl", [{"text": "hi there"}, {"text": "a longer text here"}])
    assert [(t.line, t.text) for t in located_texts([f])] == [(2, "a longer text here")]
