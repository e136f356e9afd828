"""No import cycles between mllzoo's modules, counting the imports inside functions too (the ones that keep
``mllzoo --help`` light are exactly the ones a plain import-time check would miss)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mllzoo"


def module_name(path: Path) -> str:
    parts = ("mllzoo", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The mllzoo modules ``path`` imports anywhere in its body, at run time (imports for the type
    checker only are left out). ``mllzoo`` itself is left out: it is the re-export façade, which Python
    runs before any submodule, so importing it adds no edge."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {  # `if TYPE_CHECKING:` imports name types for the checker and never run
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # `from . import graph`
    return {m for m in found if m in modules and m not in ("mllzoo", name)}


def import_graph(root: Path) -> dict[str, set[str]]:
    files = {module_name(p): p for p in root.rglob("*.py")}
    return {name: imports_of(path, set(files)) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_walk_sees_function_level_and_relative_imports(tmp_path):
    root = tmp_path / "mllzoo"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("from .a import x\n")
    (root / "a.py").write_text("def f():\n    from .sub import b\n")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "b.py").write_text("from .. import a\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, root
    try:
        graph = import_graph(root)
    finally:
        PACKAGE = saved
    assert graph["mllzoo.a"] == {"mllzoo.sub", "mllzoo.sub.b"} and graph["mllzoo.sub.b"] == {
        "mllzoo.a"
    }
    assert cycles(graph) == [["mllzoo.a", "mllzoo.sub.b"]]


def test_mllzoo_has_no_import_cycles():
    graph = import_graph(PACKAGE)
    assert {
        "mllzoo.cli.main",
        "mllzoo.cli.labels",
        "mllzoo.graph.concept_graph",
        "mllzoo.graph.samples",
    } <= set(graph)
    assert cycles(graph) == []


# The method's layers, bottom up (CONTRIBUTING.md, "How the code is laid out"): a module may import its
# own sub-package and any layer below, never above, and the peers of one layer never import each other.
LAYERS = [
    {"errors", "defaults", "output", "cancellation"},
    {"hookspecs", "labels", "classes", "extras"},
    {"plugins"},
    {"plugin_source"},  # where a plugin comes from, for the install hints
    {"models"},
    {"family"},  # the 0.1 shim over models.family
    {"store"},
    {"graph"},
    {"text", "labeling", "reuse"},
    {"default_plugins"},  # built on text; the plugin manager loads them by name, never by import
    {"selection"},
    {"evaluation", "testing"},
    {"web"},
    {"cli"},
    {"__main__"},
]


def part_of(module: str) -> str:
    """The sub-package (or top-level module) a module belongs to: ``mllzoo.store.registry`` -> ``store``."""
    return module.split(".")[1] if "." in module else module


def layer_of(module: str) -> int:
    return next(i for i, parts in enumerate(LAYERS) if part_of(module) in parts)


def test_every_module_has_a_layer():
    graph = import_graph(PACKAGE)
    assert sorted({part_of(m) for m in graph if m != "mllzoo"} - set().union(*LAYERS)) == []


def test_imports_go_down_the_layers_only():
    graph = import_graph(PACKAGE)
    wrong = sorted(
        f"{module} -> {imported}"
        for module, imported_set in graph.items()
        if module != "mllzoo"
        for imported in imported_set
        if layer_of(imported) > layer_of(module)
        or (layer_of(imported) == layer_of(module) and part_of(imported) != part_of(module))
    )
    assert wrong == []


def test_the_core_never_imports_the_default_plugins():
    graph = import_graph(PACKAGE)
    core = {m for m in graph if part_of(m) not in ("default_plugins",)} - {"mllzoo"}
    assert sorted(m for m in core if any(part_of(i) == "default_plugins" for i in graph[m])) == []


def test_only_the_store_opens_sqlite():
    """No module outside store/ connects to SQLite or uses sqlite-utils (catching ``sqlite3.Error``
    is not opening a database)."""
    opening = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            uses_sqlite_utils = isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                (name or "").split(".")[0] == "sqlite_utils"
                for name in [getattr(node, "module", None), *(a.name for a in node.names)]
            )
            connects = isinstance(node, ast.Call) and ast.unparse(node.func).endswith(
                ("sqlite3.connect", "sqlite3.dbapi2.connect")
            )
            if uses_sqlite_utils or connects:
                opening.add(module_name(path))
    assert opening and {m for m in opening if part_of(m) != "store"} == set()
