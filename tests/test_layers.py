"""Imports flow down the pipeline: data_schemas <- core <- sft <- reward <- rlhf <- gatt, safety.

Checked from the source with `ast` (import-linter cannot see the stage folders, which are mapped into the
`chatalign` namespace by pyproject's package-dir rather than living inside chatalign/).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["data_schemas", "core", "sft", "reward", "rlhf", "gatt", "safety"]
# what each layer may import from the project (besides itself)
ALLOWED = {
    "data_schemas": {"errors"},
    "core": {"data_schemas", "core"},
    "sft": {"data_schemas", "core"},
    "reward": {"data_schemas", "core", "sft"},
    "rlhf": {"data_schemas", "core", "sft", "reward"},
    "gatt": {"data_schemas", "core", "sft", "reward", "rlhf"},
    "safety": {"data_schemas", "core", "sft", "reward", "rlhf"},
}
EXEMPT = {"chatalign/cli/main.py", "chatalign/pipeline/runner.py"}  # the entry points find stages lazily


def layer_of_module(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] != "chatalign":
        return None
    if len(parts) == 1:
        return "core"
    if parts[1] in ORDER:
        return parts[1]
    if parts[1] == "errors":
        return "errors"
    return "core"


def project_files():
    for folder in ["chatalign", *[x for x in ORDER if x != "core"]]:
        for path in sorted((ROOT / folder).rglob("*.py")):
            layer = "core" if folder == "chatalign" else folder
            yield layer, path


@pytest.mark.parametrize("layer,path", list(project_files()), ids=lambda x: str(x)[-40:])
def test_imports_flow_down(layer, path):
    rel = str(path.relative_to(ROOT))
    if rel in EXEMPT:
        return
    tree = ast.parse(path.read_text(encoding="utf-8"))
    allowed = ALLOWED[layer] | {layer, "errors"}
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            target = layer_of_module(name)
            if name.split(".")[0] in ORDER and name.split(".")[0] != "core":
                pytest.fail(f"{rel}: imports bare `{name}`; use `chatalign.{name}`")
            assert target is None or target in allowed, f"{rel}: `{name}` ({target}) is above layer {layer}"


def test_the_checker_catches_an_upward_import(tmp_path):
    assert layer_of_module("chatalign.rlhf.ppo.math") == "rlhf"
    assert "rlhf" not in ALLOWED["sft"]
