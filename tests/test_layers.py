"""The project's layers, checked from the source with `ast`: imports flow down, no import cycle, the core knows
no stage.

Layers: data_schemas <- core (chatalign/) <- the stages. A stage may import data_schemas, the core, and the
stages its `Stage.depends_on` declares (stage.py, read through the registry); the core imports no stage and
names no stage module in a string; no module imports itself back through others. Imports inside functions
count as much as those at the top of a module (they are where cycles hide).

Import-linter cannot check this: the stage folders (sft/, reward/, ...) sit at the repository root and are
mapped into the `chatalign` namespace by setup.py's package_dir, which import-linter's static graph does not
follow; so the graph is built here from the files, with the same mapping.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from chatalign import registry

ROOT = Path(__file__).resolve().parents[1]
STAGES = {stage.name: stage for stage in registry.stages()}
# package -> folder: the core, data_schemas, and each stage's folder (where its stage.py is)
FOLDERS = {"chatalign": ROOT / "chatalign", "chatalign.data_schemas": ROOT / "data_schemas",
           **{f"chatalign.{name}": Path(inspect.getfile(type(stage))).parent for name, stage in STAGES.items()}}


def modules(folders: dict[str, Path]) -> dict[str, Path]:
    """Module name -> file, for every .py under each package folder (the deepest package wins a file)."""
    out: dict[str, Path] = {}
    for pkg, folder in sorted(folders.items(), key=lambda kv: -len(str(kv[1]))):
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out.setdefault(".".join([pkg, *parts]), path)
    return out


def imports_of(source: str, module: str, is_package: bool) -> set[str]:
    """Every module a source imports, at module level or inside functions (`from a import b`: a and a.b)."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
    return found


def graph_of(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    return {name: {m for m in imports_of(path.read_text(encoding="utf-8"), name, path.name == "__init__.py")
                   if m in mods and m != name} for name, path in mods.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), but for a package's __init__ importing
    its own submodules, which is how packages re-export."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 and not all(x.startswith(min(comp, key=len)) for x in comp):
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def layer_of(module: str) -> str | None:
    """'core', 'data_schemas', 'errors', a stage's name, or None (not the project)."""
    parts = module.split(".")
    if parts[0] != "chatalign":
        return None
    if len(parts) > 1 and (parts[1] in STAGES or parts[1] in ("data_schemas", "errors")):
        return parts[1]
    return "core"


def allowed_for(layer: str) -> set[str]:
    if layer == "data_schemas":
        return {"data_schemas", "errors"}
    if layer == "core":
        return {"data_schemas", "core", "errors"}
    return {"data_schemas", "core", "errors", layer, *STAGES[layer].depends_on}


MODULES = modules(FOLDERS)
GRAPH = graph_of(MODULES)
STAGE_MODULE = re.compile(rf"^chatalign\.({'|'.join(map(re.escape, STAGES))})\b")


def test_every_stage_declares_only_stages_there_are():
    assert {"sft", "reward", "rlhf", "gatt", "safety"} <= set(STAGES)
    for name, stage in STAGES.items():
        assert set(stage.depends_on) <= set(STAGES) - {name}, name


@pytest.mark.parametrize("module", sorted(MODULES), ids=lambda m: m[len("chatalign."):] or m)
def test_imports_flow_down(module):
    layer = layer_of(module)
    source = MODULES[module].read_text(encoding="utf-8")
    for name in imports_of(source, module, MODULES[module].name == "__init__.py"):
        first = name.split(".")[0]
        assert first not in STAGES and first != "data_schemas", f"{module}: imports bare `{name}`; use chatalign.{name}"
        target = layer_of(name)
        assert target is None or target in allowed_for(layer), (
            f"{MODULES[module].relative_to(ROOT)}: imports {name} ({target}), not allowed in layer {layer}"
            + (" (add it to its Stage.depends_on if it should be)" if layer in STAGES and target in STAGES else ""))


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer_of(m) in ("core", "data_schemas")))
def test_the_core_names_no_stage(module):
    """No stage module in a string, and no import of a module whose name the core writes (`import_module(f"chatalign.
    {stage}.cli")`); importing a name a stage gave (an entry point, `imported_on_call`) is how stages load."""
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert not STAGE_MODULE.match(node.value), f"{module}:{node.lineno}: names stage module {node.value!r}"
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], (ast.Constant, ast.JoinedStr)):
            fn = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            assert fn not in ("import_module", "__import__"), f"{module}:{node.lineno}: imports a module it names ({fn})"


def test_no_import_cycles():
    cycles = find_cycles(GRAPH)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


# -- the checker itself ------------------------------------------------------------------------------------------
def test_the_checker_sees_imports_in_functions_and_relative_ones():
    source = "import os\nfrom . import b\nfrom .c import d\n\ndef f():\n    from chatalign.x import y\n"
    assert imports_of(source, "chatalign.p.a", is_package=False) == {
        "os", "chatalign.p", "chatalign.p.b", "chatalign.p.c", "chatalign.p.c.d", "chatalign.x", "chatalign.x.y"}
    assert "chatalign.p.b" in imports_of("from . import b\n", "chatalign.p", is_package=True)


def test_the_checker_finds_cycles_but_not_a_package_importing_its_children():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"p": {"p.x"}, "p.x": {"p"}}) == []
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_checker_knows_the_layers():
    assert layer_of("chatalign.rlhf.ppo.trainer") == "rlhf" and layer_of("chatalign.pipeline.runner") == "core"
    assert layer_of("torch") is None and layer_of("chatalign.errors") == "errors"
    assert "rlhf" not in allowed_for("sft") and "rlhf" not in allowed_for("core")
    assert "rlhf" in allowed_for("gatt")  # declared in gatt's stage.py
    assert MODULES["chatalign.rlhf.ppo"].name == "__init__.py" and "chatalign.sft.stage" in MODULES
