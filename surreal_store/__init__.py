"""surreal-store: a provenance-first knowledge store for AI agents, on SurrealDB.

Open a store with ``async with Store(url) as store:``; see ``README.md``.
"""

from . import (
    access,
    agents,
    branches,
    bundles,
    cas,
    ci,
    commits,
    memory,
    provenance,
    releases,
    runs,
)
from ._client import SignIn, Store, StoreState, StoreStats
from ._config import Settings, default_data_dir
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
from ._types import JSON_NULL, RecordId
from ._version import __version__

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
    "load_schema_files",
    "memory",
    "provenance",
    "releases",
    "runs",
    "to_pandas",
]

# Public names report this package as their home, so reprs and docs don't leak private modules.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type(agents)):
        continue
    if getattr(_obj, "__module__", "").startswith("surreal_store._"):
        _obj.__module__ = "surreal_store"
del _name, _obj
