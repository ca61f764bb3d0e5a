"""surreal-store: a provenance-first knowledge store for AI agents, on SurrealDB.

Open a store with ``async with Store(url) as store:``; see ``README.md``.
"""

from typing import TYPE_CHECKING

from ._client import SignIn, Store, StoreState, StoreStats
from ._errors import (
    AlreadyExistsError,
    BundleError,
    ChecksumMismatchError,
    ConfigError,
    ConflictError,
    ConstraintError,
    DimensionError,
    DriftError,
    EmbeddingSpaceError,
    ImmutableError,
    InvariantError,
    MergeConflictError,
    MigrationLockedError,
    NotFoundError,
    NotVisibleError,
    PermissionDeniedError,
    QueryError,
    QuerySyntaxError,
    QueryTimeoutError,
    RecallIndexError,
    ResultError,
    SchemaError,
    SchemaFileError,
    SchemaTooNewError,
    StaleError,
    StoreError,
    StoreLockedError,
    StoreStateError,
    ThrownError,
    TransportError,
    ValidationError,
)
from ._executor import Executor
from ._frames import to_pandas
from ._types import JSON_NULL, RecordId
from ._version import __version__

if TYPE_CHECKING:
    from . import (
        access,
        agents,
        branches,
        bundles,
        cas,
        ci,
        commits,
        graph,
        memory,
        provenance,
        releases,
        runs,
    )
    from ._config import Settings, default_data_dir
    from ._migrate import (
        AppliedMigration,
        DriftItem,
        DriftReport,
        MigrationResult,
        Migrator,
        SchemaFile,
        SchemaStatus,
        default_schema_dir,
        load_schema_files,
    )

__all__ = [
    "JSON_NULL",
    "AlreadyExistsError",
    "AppliedMigration",
    "BundleError",
    "ChecksumMismatchError",
    "ConfigError",
    "ConflictError",
    "ConstraintError",
    "DimensionError",
    "DriftError",
    "DriftItem",
    "DriftReport",
    "EmbeddingSpaceError",
    "Executor",
    "ImmutableError",
    "InvariantError",
    "MergeConflictError",
    "MigrationLockedError",
    "MigrationResult",
    "Migrator",
    "NotFoundError",
    "NotVisibleError",
    "PermissionDeniedError",
    "QueryError",
    "QuerySyntaxError",
    "QueryTimeoutError",
    "RecallIndexError",
    "RecordId",
    "ResultError",
    "SchemaError",
    "SchemaFile",
    "SchemaFileError",
    "SchemaStatus",
    "SchemaTooNewError",
    "Settings",
    "SignIn",
    "StaleError",
    "Store",
    "StoreError",
    "StoreLockedError",
    "StoreState",
    "StoreStateError",
    "StoreStats",
    "ThrownError",
    "TransportError",
    "ValidationError",
    "__version__",
    "access",
    "agents",
    "branches",
    "bundles",
    "cas",
    "ci",
    "commits",
    "default_data_dir",
    "default_schema_dir",
    "graph",
    "load_schema_files",
    "memory",
    "provenance",
    "releases",
    "runs",
    "to_pandas",
]

# These load when first used (``surreal_store.graph``, ``from surreal_store import Settings``),
# not with the package: the domain modules, pydantic-settings and the migrator are more than
# most CLI commands and imports need. The name's module, or None for a domain module.
_LAZY: dict[str, str | None] = {
    **dict.fromkeys(
        (
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
        )
    ),
    **dict.fromkeys(("Settings", "default_data_dir"), "._config"),
    **dict.fromkeys(
        (
            "AppliedMigration",
            "DriftItem",
            "DriftReport",
            "MigrationResult",
            "Migrator",
            "SchemaFile",
            "SchemaStatus",
            "default_schema_dir",
            "load_schema_files",
        ),
        "._migrate",
    ),
}


def _claim(obj: object) -> None:
    """Public names report this package as their home, so reprs and docs don't leak private
    modules."""
    if getattr(obj, "__module__", "").startswith("surreal_store._"):
        obj.__module__ = "surreal_store"


if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        if name not in _LAZY:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        import importlib

        home = _LAZY[name]
        if home is None:
            return importlib.import_module(f"{__name__}.{name}")  # sets it on the package
        obj = getattr(importlib.import_module(home, __name__), name)
        _claim(obj)
        globals()[name] = obj
        return obj


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


for _name in __all__:
    if _name not in _LAZY:
        _claim(globals()[_name])
del _name, TYPE_CHECKING
