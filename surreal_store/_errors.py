"""The error tree of surreal-store.

Every failure that leaves the package is one of these. SDK and engine failures are mapped at one
boundary (``_engine``), so callers never need to import ``surrealdb`` to handle an error::

    StoreError
     ├─ TransportError            may succeed if retried (connection lost, engine unavailable)
     │   ├─ QueryTimeoutError     the call outran its timeout (not retried); a write's outcome
     │   │                        is unknown
     │   └─ StoreLockedError      an embedded store is open in another process or connection
     ├─ ConflictError             may succeed if retried (optimistic transaction conflict)
     │   └─ StaleError            a compare-and-swap saw another value: re-read, then decide
     ├─ QueryError                the database said no; carries the failing statement
     │   ├─ QuerySyntaxError      the text did not parse
     │   ├─ NotFoundError         a record, table or other resource is absent
     │   ├─ AlreadyExistsError    a record or definition with that id exists
     │   ├─ ConstraintError       a schema rule refused the write (type, ASSERT, UNIQUE, READONLY)
     │   │   └─ ThrownError       a THROW, e.g. from an event guarding an invariant
     │   │       ├─ InvariantError   a schema guard refused: the write would break a rule
     │   │       └─ ImmutableError   a fact (an edge, a completed run) cannot change
     │   ├─ PermissionDeniedError the session may not do this
     │   └─ NotVisibleError       (also a NotFoundError and a PermissionDeniedError) a
     │                            restricted session named a record it cannot see: absent, or
     │                            not its to see; the engine does not say which
     ├─ ResultError               the database answered, but not in the shape asked for
     ├─ MergeConflictError        a three-way merge found paths changed on both sides
     ├─ SchemaError
     │   ├─ SchemaTooNewError     the database records migrations this code does not know
     │   ├─ ChecksumMismatchError an applied schema file was edited afterwards
     │   ├─ MigrationLockedError  another migrator held the lock past our timeout
     │   ├─ DriftError            live definitions differ from what the files produce
     │   ├─ SchemaFileError       a schema file or directory is unreadable or misnamed
     │   └─ EmbeddingSpaceError   vectors or a model that are not the store's embedding space
     ├─ StoreStateError           misuse: a store used before open, after close, or opened twice
     ├─ RecallIndexError          the recall index beside the store failed and could not be
     │                            rebuilt; the database is untouched
     ├─ ValidationError(ValueError) bad input, refused before any query is sent
     │   ├─ DimensionError        a vector's length is not the embedding space's dimension
     │   └─ BundleError           a bundle is damaged, edited or not a bundle at all
     └─ ConfigError(ValueError)   bad settings: URL, namespace, credentials

``retryable`` on an instance says whether trying again may succeed; the retry loop asks it.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "BundleError",
    "ChecksumMismatchError",
    "ConfigError",
    "ConflictError",
    "ConstraintError",
    "DimensionError",
    "DriftError",
    "EmbeddingSpaceError",
    "ImmutableError",
    "InvariantError",
    "MergeConflictError",
    "MigrationLockedError",
    "NotFoundError",
    "NotVisibleError",
    "PermissionDeniedError",
    "QueryError",
    "QuerySyntaxError",
    "QueryTimeoutError",
    "RecallIndexError",
    "ResultError",
    "SchemaError",
    "SchemaFileError",
    "SchemaTooNewError",
    "StaleError",
    "StoreError",
    "StoreLockedError",
    "StoreStateError",
    "ThrownError",
    "TransportError",
    "ValidationError",
]


class StoreError(Exception):
    """Base class of every error raised by surreal-store."""

    retryable: bool = False


class TransportError(StoreError):
    """The request may not have reached the database, or its answer was lost.

    Retrying may succeed, but a write's outcome is unknown, so only idempotent work is retried.
    """

    retryable = True


class QueryTimeoutError(TransportError):
    """A call did not finish within its timeout.

    Not retried: a slow query stays slow, and each attempt would wait the whole timeout again.
    """

    retryable = False


class StoreLockedError(TransportError):
    """An embedded store's files are held by another process (or another open connection)."""

    retryable = False


class ConflictError(StoreError):
    """An optimistic transaction lost a write conflict and was rolled back; it can be retried."""

    retryable = True


class StaleError(ConflictError):
    """A compare-and-swap failed: the value (a branch head, a status) is not the expected one.

    Nothing was written. Retrying the same call cannot help, so it is not retried: re-read the
    current value and decide again.
    """

    retryable = False


class MergeConflictError(StoreError):
    """A three-way merge found paths changed differently on both sides; ``paths`` lists them."""

    def __init__(self, message: str, *, paths: list[str]) -> None:
        self.paths = paths
        super().__init__(message)


class QueryError(StoreError):
    """The database refused a statement.

    ``statement`` is the 1-based position of the failing statement in the query (``None`` when
    the whole query was refused, as with a parse error); ``statement_text`` is its text when it
    could be recovered; ``kind`` is the engine's error kind.
    """

    def __init__(
        self,
        message: str,
        *,
        statement: int | None = None,
        statement_text: str | None = None,
        kind: str | None = None,
    ) -> None:
        self.message = message
        self.statement = statement
        self.statement_text = statement_text
        self.kind = kind
        super().__init__(self._render())

    def _render(self) -> str:
        if self.statement is None:
            return self.message
        where = f"statement {self.statement}"
        if self.statement_text:
            text = " ".join(self.statement_text.split())
            where += f" ({text[:120]}{'...' if len(text) > 120 else ''})"
        return f"{where}: {self.message}"


class QuerySyntaxError(QueryError):
    """The query text did not parse."""


class NotFoundError(QueryError):
    """A record, table or other resource does not exist."""


class AlreadyExistsError(QueryError):
    """A record or definition with that identity already exists."""


class ConstraintError(QueryError):
    """A schema rule refused the write: a type, ASSERT, UNIQUE index, READONLY field."""


class ThrownError(ConstraintError):
    """A ``THROW`` ran: typically an event or function guarding an invariant."""


class InvariantError(ThrownError):
    """A schema guard refused the write: it would break a rule the database keeps (a memory
    keyed by its content, the default branch kept, an outcome recorded once...)."""


class ImmutableError(ThrownError):
    """The write would change or delete a fact: a provenance edge, a decision, an annotation,
    the events of a finished run."""


class PermissionDeniedError(QueryError):
    """The session is not allowed to do this: a statement its sign-in may not run (``INFO``,
    ``DEFINE``, a VIEWER's write), or a record it may not create (another agent's scope)."""


class NotVisibleError(NotFoundError, PermissionDeniedError):
    """A restricted session (an agent, a VIEWER) named a record it cannot see.

    The record is absent or outside the session's permissions; the engine answers both alike,
    so that what exists beyond a sign-in's reach does not leak. Catch either parent."""


class ResultError(StoreError):
    """The database answered, but the result did not have the shape that was asked for."""


class SchemaError(StoreError):
    """Base class of schema and migration failures."""


class SchemaTooNewError(SchemaError):
    """The database records schema versions that this code does not know; nothing was written."""


class ChecksumMismatchError(SchemaError):
    """An applied schema file's text changed since it was applied. Rebless it to accept it."""


class MigrationLockedError(SchemaError):
    """Another migrator holds the schema lock and did not release it within our timeout."""


class DriftError(SchemaError):
    """The live definitions differ from those the schema files produce."""


class SchemaFileError(SchemaError):
    """A schema file cannot be read, or its name does not follow ``NNN_name.surql``."""


class EmbeddingSpaceError(SchemaError):
    """The store's embedding space (model and dimension) is not the one asked for: a store
    reopened with another model, vectors from another model, or none declared yet. Changing
    model is an explicit re-embed (``memory.reembed``). Nothing was written."""


class StoreStateError(StoreError):
    """The store was used in the wrong state: before opening, after closing, or opened twice."""


class RecallIndexError(StoreError):
    """The recall index beside the store failed (its files or its search libraries) and
    rebuilding it from the memory table failed too. The database is untouched; recall is
    answered again once the index can be rebuilt (``memory.rebuild_index``)."""


class ValidationError(StoreError, ValueError):
    """Input was refused before anything was sent to the database."""


class DimensionError(ValidationError):
    """A vector's length is not the store's embedding dimension. Nothing was written."""


class ConfigError(StoreError, ValueError):
    """A setting is invalid: URL, namespace, database, credentials or limits."""


class BundleError(ValidationError):
    """A bundle cannot be imported as it is: a file or the manifest is damaged or was edited,
    or names tables its schema version does not define. Nothing was written."""
