"""The public surface is exactly ``surreal_store.__all__``, and only the client imports the SDK."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import surreal_store

PACKAGE = Path(surreal_store.__file__).parent


def test_all_names_exist_and_are_public() -> None:
    for name in surreal_store.__all__:
        assert hasattr(surreal_store, name), name
    assert len(set(surreal_store.__all__)) == len(surreal_store.__all__)  # ruff keeps it sorted


DOMAIN_MODULES = {
    "access",
    "agents",
    "branches",
    "bundles",
    "cas",
    "ci",
    "commits",
    "graph",
    "memory",
    "provenance",
    "releases",
    "runs",
}


# Public subpackages for optional extras: never imported by the package itself (their
# dependencies may be missing), so not in __all__; once imported they are attributes.
OPTIONAL_MODULES = {"langchain", "langgraph", "mcp"}


def test_every_public_attribute_is_in_all() -> None:
    # dir(): the names bound now and those loaded when first used (the package's __dir__), so
    # that the answer does not depend on which names other tests have read already.
    public = {name for name in dir(surreal_store) if not name.startswith("_")}
    for name in public & OPTIONAL_MODULES:
        assert getattr(surreal_store, name).__name__ == f"surreal_store.{name}"
    assert public - OPTIONAL_MODULES == set(surreal_store.__all__) - {"__version__"}


def test_optional_modules_are_not_imported_by_the_package() -> None:
    # A fresh interpreter: this one has imported them already (the tests do).
    code = (
        "import sys, surreal_store; "
        f"print(sorted(m for m in {sorted(OPTIONAL_MODULES)!r} "
        "if 'surreal_store.' + m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_exported_objects_claim_the_package() -> None:
    for name in surreal_store.__all__:
        obj = getattr(surreal_store, name)
        if name not in DOMAIN_MODULES and hasattr(obj, "__module__"):
            assert obj.__module__ == "surreal_store", name


def test_private_modules_are_underscored() -> None:
    # Public modules are the typed domain modules, each exported by name.
    for path in PACKAGE.glob("*.py"):
        if not path.name.startswith("_"):
            assert path.stem in DOMAIN_MODULES, f"{path.name}: public modules need a reason"
    assert set(surreal_store.__all__) >= DOMAIN_MODULES
    # They load when first used: each is one of the package's lazy names, with no home module.
    lazy = {name for name, home in surreal_store._LAZY.items() if home is None}
    assert lazy == DOMAIN_MODULES


def test_domain_modules_declare_all() -> None:
    for name in DOMAIN_MODULES:
        module = getattr(surreal_store, name)
        for exported in module.__all__:
            assert hasattr(module, exported), f"{name}.{exported}"


def test_only_the_engine_boundary_imports_the_sdk() -> None:
    importers = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "surrealdb" or n.startswith("surrealdb.") for n in names):
                importers.add(path.parent.name)
    assert importers == {"_engine"}


def test_py_typed_is_shipped() -> None:
    assert (PACKAGE / "py.typed").exists()
