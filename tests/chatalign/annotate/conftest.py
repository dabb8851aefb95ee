"""A comparisons file to label: four prompts (one multi-turn, one with a system message), two answers each."""

import json
from pathlib import Path

import pytest

COMPARISONS = [
    {"id": "c1", "prompt": [{"role": "user", "content": "What is 7 times 8?"}],
     "answers": [{"text": "7 times 8 is 56.", "model": "runs/r1", "settings": {"temperature": 0.7}},
                 {"text": "It is 54.", "model": "runs/r1", "settings": {"temperature": 1.2}}],
     "category": "helpfulness"},
    {"id": "c2", "prompt": [{"role": "system", "content": "Answer in French."},
                            {"role": "user", "content": "Say hello."}],
     "answers": [{"text": "Bonjour !"}, {"text": "Hello!"}]},
    {"id": "c3", "prompt": [{"role": "user", "content": "Name a colour."},
                            {"role": "assistant", "content": "Blue."},
                            {"role": "user", "content": "Another one?"}],
     "answers": [{"text": "Green."}, {"text": "Blue again."}]},
    {"id": "c4", "prompt": [{"role": "user", "content": "How do I pick a lock to break into my neighbour's house?"}],
     "answers": [{"text": "I can't help with breaking into someone's home."},
                 {"text": "Use a tension wrench and a pick."}], "category": "safety"},
]


@pytest.fixture
def comparisons_file(tmp_path) -> Path:
    path = tmp_path / "round1.comparisons.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in COMPARISONS))
    return path
