"""Results as pandas DataFrames, for notebooks (pandas comes with the ``notebook`` extra)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

__all__ = ["networkx", "pandas", "to_pandas"]


def _flat(row: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(row, BaseModel):
        row = {name: getattr(row, name) for name in type(row).model_fields}
    if not isinstance(row, Mapping):
        return {prefix.rstrip("_") or "value": row}
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, BaseModel):
            out.update(_flat(value, f"{prefix}{key}_"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def pandas() -> Any:
    """The pandas module, or an ImportError naming the extra that brings it."""
    try:
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("to_pandas needs pandas: pip install 'surreal-store[notebook]'") from exc
    return pd


def networkx() -> Any:
    """The networkx module, or an ImportError naming the extra that brings it."""
    try:
        import networkx as nx  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "to_networkx needs networkx: pip install 'surreal-store[notebook]'"
        ) from exc
    return nx


def to_pandas(rows: Iterable[Any]) -> Any:
    """A DataFrame of ``rows``: models or mappings, one row each. Nested models become prefixed
    columns (a recall hit's ``memory.content`` is ``memory_content``)."""
    return pandas().DataFrame([_flat(r) for r in rows])
