"""The package's import graph: layers without cycles (ARCHITECTURE.md, issue 13.3).

Every module of mathcalc is parsed with ``ast`` (nothing is imported), its
imports of mathcalc modules collected, at module level and inside functions,
and the graph checked against the layer table in ARCHITECTURE.md (lowest layer
first): a module imports only modules of its own layer or of lower layers,
the graph has no cycle, and an import inside a function is for an optional
dependency only (the few mathcalc modules that need one are listed below).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mathcalc"

# Imports of mathcalc modules that may sit inside a function: the module they
# import needs an optional dependency (the web extra), so importing it at the top
# would make the command line need it too.
OPTIONAL = {
    ("mathcalc.cli", "mathcalc.serve.server"): "starlette and uvicorn (the web extra)",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layers() -> dict:
    """Module name -> layer number, from the ```layers block of ARCHITECTURE.md
    (first line lowest; a name ending in ``.*`` stands for a subpackage's modules)."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    block = re.search(r"^```layers\n(.*?)^```", text, re.S | re.M)
    assert block, "ARCHITECTURE.md has no ```layers block"
    table = {}
    for level, line in enumerate(line for line in block.group(1).splitlines() if line.strip()):
        names = line.split("#")[0].split(":", 1)[-1].split()
        for name in names:
            table[name] = level
    return table


LAYERS = layers()


def layer_of(module: str) -> int:
    short = module.removeprefix("mathcalc").lstrip(".") or "mathcalc"
    if short in LAYERS:
        return LAYERS[short]
    package = short.rsplit(".", 1)[0] + ".*"
    if "." in short and package in LAYERS:
        return LAYERS[package]
    raise KeyError(module)


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if MODULES[module].name != "__init__.py":
        base = base[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str) -> list:
    """(imported mathcalc module, line, inside a function) for every import in ``module``."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    inside = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inside.update(id(n) for n in ast.walk(fn) if n is not fn)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            # ``from . import nodes`` imports the submodule; ``from .api import diff`` the module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]  # import a.b.c names the module a.b.c or above
            if target in MODULES and target != module:
                found.append((target, node.lineno, id(node) in inside))
    return found


GRAPH = {m: imports(m) for m in MODULES}


def test_every_module_has_a_layer():
    missing = []
    for module in MODULES:
        try:
            layer_of(module)
        except KeyError:
            missing.append(module)
    assert not missing, f"modules not in ARCHITECTURE.md's layer table: {missing}"


def test_no_import_of_a_higher_layer():
    upward = [f"{m}:{line} imports {t} (layer {layer_of(t)} above its {layer_of(m)})"
              for m, found in GRAPH.items() for t, line, _ in found
              if layer_of(t) > layer_of(m)]
    assert not upward, "\n".join(upward)


def test_no_mathcalc_import_inside_a_function():
    inside = [f"{m}:{line} imports {t} inside a function"
              for m, found in GRAPH.items() for t, line, in_fn in found
              if in_fn and (m, t) not in OPTIONAL]
    assert not inside, "\n".join(inside)


def test_the_optional_imports_are_still_there():
    # an entry of OPTIONAL that no longer occurs is a stale exception: remove it
    for (m, t) in OPTIONAL:
        assert any(target == t and in_fn for target, _, in_fn in GRAPH[m]), (m, t)


def find_cycle(graph: dict) -> list | None:
    """A cycle of the graph {module: [module, ...]} as a list of modules, or None."""
    state, stack = {}, []

    def visit(start):
        # iterative depth-first search: the path from start is on ``stack``
        todo = [(start, iter(graph[start]))]
        state[start] = "open"
        stack.append(start)
        while todo:
            node, edges = todo[-1]
            for nxt in edges:
                if state.get(nxt) == "open":
                    return stack[stack.index(nxt):] + [nxt]
                if nxt not in state:
                    state[nxt] = "open"
                    stack.append(nxt)
                    todo.append((nxt, iter(graph[nxt])))
                    break
            else:
                state[node] = "done"
                stack.pop()
                todo.pop()
        return None

    for node in graph:
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_cycle():
    graph = {m: sorted({t for t, _, _ in found}) for m, found in GRAPH.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("graph, cyclic", [
    ({"a": ["b"], "b": ["c"], "c": []}, False),
    ({"a": ["b"], "b": ["c"], "c": ["a"]}, True),
    ({"a": ["b", "c"], "b": ["c"], "c": []}, False),
    ({"a": ["a"]}, True),
])
def test_the_cycle_finder_finds_cycles(graph, cyclic):
    assert (find_cycle(graph) is not None) == cyclic


def test_the_graph_sees_imports_inside_functions_and_relative_ones():
    # the parser of imports itself: a known top-level and relative import is found
    assert any(t == "mathcalc.nodes" and not in_fn for t, _, in_fn in GRAPH["mathcalc.diff"])
    assert any(t == "mathcalc.serve.server" and in_fn for t, _, in_fn in GRAPH["mathcalc.cli"])
    assert any(t == "mathcalc.printing.tree" for t, _, _ in GRAPH["mathcalc.printing.matrix"])
