"""The derived authored file stays the conversion of its source (edit the source, then re-derive)."""

import json
from pathlib import Path

AUTHORED = Path(__file__).resolve().parents[2] / "data" / "quickstart" / "authored"


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (AUTHORED / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def test_benign_conversations_are_the_benign_prompts_with_their_reference_answers():
    source, derived = _rows("safety_benign_authored.jsonl"), _rows("safety_benign_sft_authored.jsonl")
    assert len(derived) == len(source) == 120
    for src, row in zip(source, derived):
        assert row["id"] == src["id"].replace("-b-", "-bsft-")
        assert row["messages"][:-1] == src["messages"]
        assert row["messages"][-1] == {"role": "assistant", "content": src["reference"]}
        assert row["tags"] == src["tags"] and "benign_lookalike" in row["tags"]


def test_benign_conversations_load_as_conversation_records():
    from chatalign.data_schemas import load_records

    result = load_records(str(AUTHORED / "safety_benign_sft_authored.jsonl"), "conversation")
    assert len(result.records) == 120 and not result.skipped
