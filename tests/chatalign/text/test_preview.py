"""`chatalign data preview`: segments of equal mask, terminal rendering, and the file preview (text and JSON)."""

from __future__ import annotations

import json

from chatalign.text.masks import encode_chat
from chatalign.text.preview import preview_file, render_terminal, segments

CONV = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Name a color"},
    {"role": "assistant", "content": "Blue."},
]

CHATML_SEGMENTS = [
    {"text": "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n"
             "<|im_start|>assistant\n", "loss": 0},
    {"text": "Hello!<|im_end|>", "loss": 1},
    {"text": "\n<|im_start|>user\nName a color<|im_end|>\n<|im_start|>assistant\n", "loss": 0},
    {"text": "Blue.<|im_end|>", "loss": 1},
    {"text": "\n", "loss": 0},
]


def test_segments_merge_runs_of_equal_mask(smol_tokenizer):
    enc = encode_chat(smol_tokenizer, CONV)
    segs = segments(smol_tokenizer, enc.input_ids, enc.loss_mask)
    assert segs == CHATML_SEGMENTS
    assert "".join(s["text"] for s in segs) == smol_tokenizer.decode(enc.input_ids)
    assert segments(smol_tokenizer, [], []) == []


def test_render_terminal_with_and_without_colour():
    plain = render_terminal(CHATML_SEGMENTS, color=False)
    assert plain == (CHATML_SEGMENTS[0]["text"] + "«Hello!<|im_end|>»" + CHATML_SEGMENTS[2]["text"]
                     + "«Blue.<|im_end|>»\n")
    coloured = render_terminal(CHATML_SEGMENTS[:2], color=True)
    assert coloured == f"\x1b[2m{CHATML_SEGMENTS[0]['text']}\x1b[0m\x1b[32mHello!<|im_end|>\x1b[0m"


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_preview_file_json_and_text(tmp_path, embedded_dir):
    data = tmp_path / "chat.jsonl"
    write_jsonl(data, [{"id": "a", "messages": CONV},
                       {"id": "b", "messages": CONV[1:3]},
                       {"id": "c", "messages": CONV[3:]}])
    lines = preview_file(str(data), str(embedded_dir), limit=2, as_json=True).splitlines()
    assert len(lines) == 2  # limit honoured
    first = json.loads(lines[0])
    assert first["id"] == "a" and first["segments"] == CHATML_SEGMENTS
    assert first["trained_tokens"] == 6 and first["tokens"] == 39 and first["truncated"] is False

    text = preview_file(str(data), str(embedded_dir), limit=3, color=False)
    assert "--- example 1 (id a): 39 tokens, 6 trained ---" in text
    assert "«Hello!<|im_end|>»" in text and "«Blue.<|im_end|>»" in text
    assert "<|im_start|>user\nName a color<|im_end|>" in text and "«Name" not in text
    assert text.rstrip().endswith("(3 example(s) shown; trained text between « »)")


def test_preview_file_named_template_and_empty_rows(tmp_path, embedded_dir):
    data = tmp_path / "chat.jsonl"
    write_jsonl(data, [{"messages": CONV}])
    segs = json.loads(preview_file(str(data), str(embedded_dir), as_json=True, chat_template="zephyr"))["segments"]
    assert [s["text"] for s in segs if s["loss"]] == ["Hello!<|im_end|>", "Blue.<|im_end|>"]
    assert segs[0] == {"text": "<|system|>\nBe brief.<|im_end|>\n<|user|>\nHi there<|im_end|>\n<|assistant|>\n",
                       "loss": 0}
    text = preview_file(str(data), str(embedded_dir), color=False, max_length=5)
    assert "5 tokens, 0 trained, truncated" in text and "(no trained token" in text
