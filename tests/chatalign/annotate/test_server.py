"""`chatalign annotate` as a real server: the JSON API the page uses, its refusals, and a server killed mid-way
(SIGKILL, no clean-up) that comes back with every saved label."""

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from chatalign.annotate.labels import shown_order
from chatalign.data_schemas import load_records

from .server_process import annotate_server


def call(url: str, path: str, body: dict | None = None, origin: str | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url.rstrip("/") + path, data=data, headers={"Content-Type": "application/json"})
    if origin:
        req.add_header("Origin", origin)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def label(url: str, item_id: str, better: str = "left", **kw) -> tuple[int, dict]:
    return call(url, "/api/label", {"annotator": "ann", "id": item_id, "better": better, "strength": "better",
                                     "safety": "both_safe", **kw})


def test_labels_survive_a_killed_server_and_the_next_one_resumes(comparisons_file):
    labels = comparisons_file.with_name("round1.comparisons.labels.jsonl")
    with annotate_server(comparisons_file) as (proc, url):
        status, state = call(url, "/api/state?annotator=ann")
        assert status == 200 and (state["done"], state["total"], state["item"]["id"]) == (0, 4, "c1")
        status, state = label(url, "c1", better="right")
        assert status == 200 and state["done"] == 1 and state["item"]["id"] == "c2"
        proc.kill()  # no chance to flush anything: the label was on disk before the answer left
    (pref,) = load_records(labels, "preference").records
    right = shown_order("c1", "person:ann")[1]
    assert pref.chosen == ["7 times 8 is 56.", "It is 54."][right] and pref.annotation.shown_first == "rejected"
    with annotate_server(comparisons_file) as (_, url):
        assert call(url, "/api/state?annotator=ann")[1]["item"]["id"] == "c2"
        assert call(url, "/api/state?annotator=bob")[1]["done"] == 0  # each annotator has their own progress


@pytest.mark.parametrize("change, status, needle", [
    ({"strength": "enormously_better"}, 400, "not on the scale"),
    ({"safety": "maybe"}, 400, "is not a label"),
    ({"better": "middle"}, 400, "is not a side"),
    ({"id": "c99"}, 400, "not in this file"),
    ({"annotator": ""}, 400, "annotator name"),
])
def test_a_bad_label_gets_a_clear_answer_and_is_not_written(comparisons_file, change, status, needle):
    with annotate_server(comparisons_file) as (_, url):
        body = {"annotator": "ann", "id": "c1", "better": "left", "strength": "better", "safety": "both_safe",
                **change}
        got, answer = call(url, "/api/label", body)
        assert got == status and needle in answer["error"]
    assert not comparisons_file.with_name("round1.comparisons.labels.jsonl").exists()


def test_labels_from_another_site_are_refused(comparisons_file):
    with annotate_server(comparisons_file) as (_, url):
        status, answer = call(url, "/api/label", {"annotator": "ann", "id": "c1", "better": "left",
                                                  "strength": "better", "safety": "both_safe"},
                              origin="https://evil.example")
        assert status == 403 and "evil.example" in answer["error"]
        assert label(url, "c1")[0] == 200  # the page's own origin (or none, as here) is fine


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chatalign.cli", "annotate", *args], capture_output=True,
                          text=True, timeout=120)


def test_bad_input_files_fail_in_one_line(comparisons_file, tmp_path):
    out = run_cli(str(tmp_path / "nope.jsonl"))
    assert out.returncode != 0 and "nope.jsonl: no such file" in out.stderr and "Traceback" not in out.stderr
    dup = tmp_path / "dup.jsonl"
    dup.write_text(comparisons_file.read_text().splitlines()[0] + "\n" + comparisons_file.read_text())
    out = run_cli(str(dup))
    assert out.returncode != 0 and "dup.jsonl:2: id: 'c1' repeats the id of line 1" in out.stderr
    tampered = tmp_path / "labels.jsonl"
    tampered.write_text('{"prompt": [{"role": "user", "content": "hi"}], "chosen": "a", "rejected": "b", '
                        '"strength": "huge"}\n')
    out = run_cli(str(comparisons_file), "--labels", str(tampered))
    assert out.returncode != 0 and "labels.jsonl:1" in out.stderr and "strength" in out.stderr
    assert "Traceback" not in out.stderr
