"""The library is layered: imports point one way, never into ``recipes/``, without cycles.

Layers, lowest first; a module may import its own subpackage and the layers
below it, at module level or inside a function.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tinyclap"
LAYERS = [
    {"runtime"},  # the torch-free runtime: numpy, soundfile, onnxruntime only
    {"_compat", "errors"},
    {"nn"},
    {"audio"},
    {"data"},
    {"datasets"},
    {"teachers", "students"},
    {"zeroshot"},
    {"pruning"},
    {"stages"},
    {"deploy", "inference"},  # tinyclap.inference: the public alias of deploy.inference
    {"tools", "bench"},  # bench: one module per benchmark (tinyclap bench <name>)
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
# siblings of one layer that may import each other in one direction only
SIBLING_ORDER = {("students", "teachers"): "never"}


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _top(path):
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0] if len(parts) > 1 else parts[0]


def _imports(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno


def test_every_subpackage_has_a_layer():
    tops = {_top(p) for p in _modules()} - {"__init__"}
    assert tops <= set(RANK), f"give these a layer: {sorted(tops - set(RANK))}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    own = _top(path)
    if own == "__init__":
        return
    for module, line in _imports(path):
        assert not module.startswith("recipes"), f"{path}:{line} imports {module}"
        if not module.startswith("tinyclap."):
            continue
        other = module.split(".")[1]
        if other == own:
            continue
        assert RANK[other] <= RANK[own], f"{path}:{line}: {own} imports {module} (a higher layer)"
        if RANK[other] == RANK[own]:
            assert (own, other) not in SIBLING_ORDER, f"{path}:{line}: {own} imports {other}"


def test_no_import_cycles_between_modules():
    graph = {}
    for path in _modules():
        name = ".".join(("tinyclap", *path.relative_to(PACKAGE).with_suffix("").parts))
        name = name.removesuffix(".__init__")
        graph[name] = {m for m, _ in _imports(path) if m.startswith("tinyclap.") and m != name}

    # a package's __init__ re-exports its modules: count edges into modules only
    def targets(module):
        return {m for m in graph.get(module, ()) if m in graph and not _is_package(m, graph)}

    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in targets(node):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [node])


def _is_package(name, graph):
    return any(other.startswith(name + ".") for other in graph)
