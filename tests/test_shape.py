"""The package's shape, checked: short functions, short modules, imports in one direction.

Layers, lowest first; a module may import from its own layer and the layers below it, never from a
layer above (lazy imports inside functions count too). A new module must be placed here.
"""

import ast
from pathlib import Path

import pytest

from conftest import ROOT

PKG = ROOT / "ksrcgraph"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 500

LAYERS = [
    # base: errors, kernel knowledge, where the cache lives, progress on stderr
    {"errors", "env", "kdata", "data", "cachedir", "progress", "rows", "ctext"},
    # C front end: bytes in, facts out
    {"clean", "extract", "facts", "queries"},
    # core: trees, the store, linking, the graph and queries on it, diffs of paths
    {"sources", "archive", "download", "store", "index", "link", "flows", "precision", "resolve", "resolve_cleanup", "graph", "query", "diff", "attach", "symbols"},
    # the reference stack, built from the linked program and queried with the graph
    {"refstack"},
    # the whole pipeline behind one call
    {"pipeline"},
    # rendering
    {"report"},
    # the command line
    {"cli", "entry", "__main__", "__init__"},
]


def layer_of(module: str) -> int:
    top = module.split(".")[0]
    if top.startswith("extract"):
        top = "extract"
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"module {module!r} is in no layer of tests/test_shape.py")


def modules() -> list[tuple[str, Path]]:
    out = []
    for p in sorted(PKG.rglob("*.py")):
        rel = p.relative_to(PKG).with_suffix("")
        parts = [x for x in rel.parts if x != "__init__"] or ["__init__"]
        out.append((".".join(parts), p))
    return out


def imported(module: str, path: Path, tree: ast.AST) -> set[str]:
    """ksrcgraph modules imported by this module (relative or absolute)."""
    pkg = [] if module == "__init__" else module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    got: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
                target = [*base, *(node.module.split(".") if node.module else [])]
                if not node.module:  # from . import x: a module x, or a name of the package itself
                    got.update(".".join([*target, a.name]) if (PKG.joinpath(*target, a.name + ".py").exists()
                               or PKG.joinpath(*target, a.name).is_dir()) else ".".join(target) or "__init__"
                               for a in node.names)
                    continue
            elif node.module and node.module.startswith("ksrcgraph"):
                target = node.module.split(".")[1:]
            else:
                continue
            if target:
                got.add(".".join(target))
        elif isinstance(node, ast.Import):
            got.update(a.name.split(".", 1)[1] for a in node.names if a.name.startswith("ksrcgraph."))
    return got


MODULES = modules()


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_module_is_short(module, path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_MODULE_LINES, f"{module}: {n} lines"


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_functions_are_short(module, path):
    tree = ast.parse(path.read_text())
    long = [f"{n.name} ({n.end_lineno - n.lineno + 1} lines, line {n.lineno})" for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{module}: " + ", ".join(long)


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_imports_follow_the_layers(module, path):
    mine = layer_of(module)
    above = sorted(m for m in imported(module, path, ast.parse(path.read_text())) if layer_of(m) > mine)
    assert not above, f"{module} (layer {mine}) imports from a higher layer: {above}"


def test_layer_table_knows_every_module():
    for module, _ in MODULES:
        layer_of(module)


def closure(start: list[str], by_name: dict) -> set[str]:
    """The modules start imports, directly or not (start included)."""
    todo, seen = list(start), set(start)
    while todo:
        m = todo.pop()
        for dep in imported(m, by_name[m], ast.parse(by_name[m].read_text())):
            if dep in by_name and dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_graph_cache_key_covers_what_building_a_graph_imports():
    """Graphs are cached under a digest of the code but kdata.NOT_IN_GRAPH: nothing building one
    imports (pipeline.build_graph and what it reaches) may be left out, or a change to it would keep
    stale graphs."""
    from ksrcgraph import kdata

    by_name = dict(MODULES)
    left_out = {m for m, p in MODULES if p.relative_to(ROOT / "ksrcgraph").as_posix().startswith(kdata.NOT_IN_GRAPH)}
    assert "query" in left_out and "refstack.replay" in left_out  # the key does leave query-time code out
    assert sorted(closure(["pipeline"], by_name) & left_out) == []


def test_facts_cache_key_covers_what_the_front_end_imports():
    """Facts are cached under a digest of kdata.FRONT_END's modules only: every module those import
    (directly or not) must be among them, or a change to it would keep stale facts."""
    from ksrcgraph import kdata

    def covered(m: str) -> bool:
        return m.replace(".", "/").startswith(kdata.FRONT_END)

    by_name = dict(MODULES)
    seen = closure([m for m in by_name if covered(m)], by_name)
    assert sorted(m for m in seen if not covered(m)) == []
