"""The package's own rules about imports, read from the source with ``ast``.

A private name (``_x``) belongs to its module: no other module of the package, and no
benchmark, imports it or reaches it through a module (``memory._x``). Private *modules*
(``from . import _retry``) are the package's own and may be imported anywhere in it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_OURS = ("surreal_store", "bench")


def _sources() -> list[Path]:
    return sorted(p for d in _OURS for p in (ROOT / d).glob("*.py"))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _crossings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found: list[str] = []
    ours: set[str] = set()  # names bound to modules of the package or the benchmarks
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            inside = node.level > 0 or (node.module or "").split(".")[0] in _OURS
            if not inside:
                continue
            for alias in node.names:
                if (
                    _is_private(alias.name)
                    and not (ROOT / "surreal_store" / f"{alias.name}.py").exists()
                ):
                    found.append(f"from {'.' * node.level}{node.module or ''} import {alias.name}")
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
        ):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_no_private_name_crosses_modules() -> None:
    crossings = {str(p.relative_to(ROOT)): c for p in _sources() if (c := _crossings(p))}
    assert crossings == {}


def _imports() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (at the top, lazily, or for typing)."""
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / "surreal_store").glob("*.py")):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(alias.name for alias in node.names)
        graph[path.stem] = found - {path.stem}
    return graph


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
