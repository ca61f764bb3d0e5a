"""The package's own rules about imports, read from the source with ``ast``.

- Layers: every module of ``surreal_store`` belongs to one layer of :data:`LAYERS` (a package
  with all its modules), and imports only from its own layer or the ones below it.
- No import circle between modules (a package's ``__init__`` counts as a module).
- Inside the packages that are rooms of their own (:data:`INNER_LAYERS`: the engine boundary,
  the recall index), the same rule between their modules.
- A private name (``_x``) belongs to its module: no other module of the package, and no
  benchmark, imports it or reaches it through a module (``memory._x``). Private *modules*
  (``from . import _retry``, ``from ._write import remember``) are the package's own and may be
  imported anywhere above them.
- Only the engine boundary (``_engine``) imports the ``surrealdb`` SDK.
- No module is over :data:`MAX_LINES` lines unless :data:`LONG_MODULES` names it with the one
  idea it holds.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "surreal_store"
_OURS = ("surreal_store", "bench")

# Bottom to top. A module may import from its own layer and from every layer below it.
LAYERS: list[set[str]] = [
    {"_version", "_errors", "_frames"},
    {"_types", "_api", "_surql", "_config"},
    {"_match", "_rank"},
    {"_engine"},  # the SDK boundary: nothing of it knows the store
    {"_ids", "_retry", "_executor", "_permissions", "_feeds"},
    {"_migrate"},
    {"_client"},
    {"_invalidation"},
    {"_facts"},
    {"agents", "access", "cas", "ci", "releases", "runs", "branches"},
    {"commits"},
    {"memory", "_space"},  # _space: the old path of memory's EmbeddingSpace, for old pickles
    {"provenance"},
    {"graph"},
    {"bundles"},
    {"_doors"},  # the doors' shared kit
    {"langgraph", "langchain", "mcp"},  # optional extras: nothing of the core imports them
    {"_demo"},
    {"_cli", "__main__", ""},  # "" is the package's own __init__
]


# Inside a package, bottom to top, by module name ("" is the package's __init__).
INNER_LAYERS: dict[str, list[set[str]]] = {
    "_engine": [
        {"_sdk"},
        {"_exit", "_signin", "_codec"},
        {"_answers"},
        {"_embedded"},
        {""},
    ],
    # The pure parts (no database): analysis, rows, files, the index and its search, saving
    # and loading; then the feed follower, and the memory layer's door.
    "memory._recall_index": [
        {"_failures", "_analysis", "_rows", "_files", "_times"},
        {"_vectors"},
        {"_index"},
        {"_persist", "_entity_index"},
        {"_feed"},
        {"_entity_feed"},
        {""},
    ],
}
# Modules of the recall index that never talk to the database (tested without an engine).
PURE = {
    f"memory._recall_index.{m}"
    for m in (
        "_analysis",
        "_rows",
        "_files",
        "_times",
        "_vectors",
        "_index",
        "_persist",
        "_entity_index",
    )
}

MAX_LINES = 600
# Modules allowed over MAX_LINES, each with the single idea it holds.
LONG_MODULES: dict[str, str] = {
    "_migrate.py": "the migrator: schema files applied in order, checked, locked, and drift",
    "commits.py": "agent-state commits: content-addressed snapshots, history, diff and merge",
    "_permissions.py": "the access table: every table's and field's rules per role, as data",
    # The doors: each its framework's interface over the store, what they share in _doors.
    "langgraph/_checkpoint.py": "the LangGraph checkpointer over commits",
    "langgraph/_store.py": "the LangGraph BaseStore over memories",
    "langchain/_vectorstore.py": "the LangChain VectorStore over memories",
}


def _module_name(path: Path, base: Path = PACKAGE) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(base: Path = PACKAGE) -> dict[str, Path]:
    return {_module_name(p, base): p for p in sorted(base.rglob("*.py"))}


def _package_of(name: str, path: Path) -> list[str]:
    parts = name.split(".") if name else []
    return parts if path.name == "__init__.py" else parts[:-1]


def _source(package: list[str], node: ast.ImportFrom) -> str:
    """The dotted module a ``from ... import`` reads from, relative levels resolved."""
    if node.level == 0:
        return node.module or ""
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + (node.module.split(".") if node.module else []))


def _targets(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports (at the top, lazily or for typing)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            target = _source(_package_of(name, path), node)
            if node.module:
                found.add(target)
            for alias in node.names:  # `from . import x`: x may be a module
                sub = f"{target}.{alias.name}" if target else alias.name
                if sub in known:
                    found.add(sub)
                elif not node.module:
                    found.add(target)
    return found - {name}


def _imports() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _targets(name, path, known) for name, path in modules.items()}


def _layer(module: str) -> int:
    top = module.split(".")[0]
    for i, layer in enumerate(LAYERS):
        if top in layer:
            return i
    raise AssertionError(f"{module or '__init__'}: not in any layer of tests/test_layers.py")


def test_every_module_has_a_layer() -> None:
    for module in _modules():
        _layer(module)


def test_imports_go_down_the_layers() -> None:
    upward = sorted(
        f"{module or '__init__'} imports {target or '__init__'}"
        for module, targets in _imports().items()
        for target in targets
        if _layer(target) > _layer(module)
    )
    assert upward == []


def test_no_import_circle() -> None:
    graph = _imports()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import circle: " + " -> ".join([*path, module]))
        if module in done or module not in graph:
            return
        for imported in sorted(graph[module]):
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _all_modules() -> set[str]:
    """Every module and package of ours, dotted from the repository root."""
    out: set[str] = set()
    for top in _OURS:
        for name in _modules(ROOT / top):
            out.add(f"{top}.{name}" if name else top)
    return out


def _absolute(path: Path) -> str:
    return _module_name(path, ROOT)


def _crossings(path: Path, every: set[str]) -> list[str]:
    tree = ast.parse(path.read_text())
    name = _absolute(path)
    package = _package_of(name, path)
    found: list[str] = []
    ours: set[str] = set()  # names bound to modules of the package or the benchmarks
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _source(package, node)
            if source.split(".")[0] not in _OURS:
                continue
            for alias in node.names:
                if _is_private(alias.name) and f"{source}.{alias.name}" not in every:
                    found.append(f"from {source} import {alias.name}")
                ours.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in _OURS:
                    ours.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in ours
            and _is_private(node.attr)
            and not any(m.endswith(f".{node.attr}") for m in every)
        ):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_no_private_name_crosses_modules() -> None:
    every = _all_modules()
    sources = sorted(p for top in _OURS for p in (ROOT / top).rglob("*.py"))
    crossings = {str(p.relative_to(ROOT)): c for p in sources if (c := _crossings(p, every))}
    assert crossings == {}


def test_the_rules_see_a_violation() -> None:
    # The rules read real import statements: an upward import and a private name are caught.
    graph = _imports()
    assert "memory._write" in graph and "_client" in graph["memory._write"]
    assert _layer("memory._write") > _layer("_client")
    every = _all_modules()
    probe = ROOT / "tests" / "_layers_probe.py"
    probe.write_text("from surreal_store.memory._write import _row\n")
    try:
        assert _crossings(probe, every) == ["from surreal_store.memory._write import _row"]
    finally:
        probe.unlink()


def test_modules_inside_packages_are_private() -> None:
    # A package's public surface is its __init__; what it is made of stays private.
    public = sorted(
        name for name in _modules() if "." in name and not name.rsplit(".", 1)[1].startswith("_")
    )
    assert public == []


def test_imports_go_down_inside_the_rooms() -> None:
    upward: list[str] = []
    for package, layers in INNER_LAYERS.items():

        def inner(module: str, package: str = package, layers: list[set[str]] = layers) -> int:
            rest = module.removeprefix(package).lstrip(".").split(".")[0]
            for i, layer in enumerate(layers):
                if rest in layer:
                    return i
            raise AssertionError(f"{module}: not in a layer of INNER_LAYERS[{package!r}]")

        def inside(module: str, package: str = package) -> bool:
            return module == package or module.startswith(package + ".")

        for module, targets in _imports().items():
            if not inside(module):
                continue
            upward += [
                f"{module} imports {target}"
                for target in targets
                if inside(target) and inner(target) > inner(module)
            ]
    assert upward == []


def test_the_pure_parts_of_the_recall_index_do_not_talk_to_the_database() -> None:
    graph = _imports()
    database = {"_client", "_executor", "_engine._embedded", "_engine._answers", "memory._write"}
    talking = sorted(
        f"{module} imports {target}"
        for module in PURE
        for target in graph[module]
        if target in database or target.endswith("._feed")
    )
    assert talking == []


def _sdk_importers(modules: dict[str, Path]) -> set[str]:
    importers: set[str] = set()
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            if any(n.split(".")[0] == "surrealdb" for n in names):
                importers.add(name)
    return importers


def test_only_the_engine_boundary_imports_the_sdk() -> None:
    importers = _sdk_importers(_modules())
    assert importers
    assert sorted(m for m in importers if m.split(".")[0] != "_engine") == []


def _too_long(paths: list[Path], base: Path = PACKAGE) -> list[str]:
    long = {
        str(path.relative_to(base)): n
        for path in paths
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    return sorted(f"{name}: {n} lines" for name, n in long.items() if name not in LONG_MODULES)


def test_no_module_holds_two_ideas_in_over_600_lines() -> None:
    assert _too_long(sorted(PACKAGE.rglob("*.py"))) == []
    assert all(reason and "\n" not in reason for reason in LONG_MODULES.values())


def test_the_new_rules_see_a_violation(tmp_path: Path) -> None:
    probe = tmp_path / "_probe.py"
    probe.write_text("import surrealdb.data\n" + "x = 1\n" * MAX_LINES)
    assert _sdk_importers({"memory._probe": probe}) == {"memory._probe"}
    assert _too_long([probe], tmp_path) == [f"_probe.py: {MAX_LINES + 1} lines"]
