"""The package's modules that the command modules name at their top (``from ._lazy import
graph``), each loaded when a command first reads one of its attributes: ``--help`` and each
command need only a few of them."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING

__all__ = ["access", "agents", "graph", "lazy", "provenance", "releases", "runs"]


def lazy(name: str) -> ModuleType:
    """``surreal_store.<name>``, executed on first attribute access: the same module object
    before and after, and at once if it is loaded already."""
    full = f"surreal_store.{name}"
    module = sys.modules.get(full)
    if module is not None:
        return module
    spec = importlib.util.find_spec(full)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(full, name=full)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[full] = module
    loader.exec_module(module)
    setattr(sys.modules["surreal_store"], name, module)  # as an import would
    return module


if TYPE_CHECKING:
    from .. import access, agents, graph, provenance, releases, runs
else:
    access, agents, graph, provenance, releases, runs = map(
        lazy, ("access", "agents", "graph", "provenance", "releases", "runs")
    )
