"""The engine's answers: every statement's result converted, the failure that caused the
others raised as our error, and the rows validated into the type a query asks for.

Failures map into :mod:`surreal_store._errors`: ``TransportError`` and ``ConflictError`` may
succeed if retried, ``QueryError`` and its kinds are the database saying no, a ``THROW
'code: text'`` of a schema event or domain query becomes the error its code names.
"""

from __future__ import annotations

from collections.abc import Hashable
from functools import lru_cache
from typing import Any, TypeVar, cast, get_origin

from pydantic import PydanticUserError, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from .. import _errors as e
from .._surql import QueryShape
from . import _sdk as sdk
from ._codec import from_sdk

__all__ = [
    "THROW_CODES",
    "check_into",
    "drop_use",
    "error_for",
    "map_exception",
    "pick",
    "results",
    "validate_rows",
]

T = TypeVar("T")

_TXN_KEYWORDS = frozenset({"BEGIN", "COMMIT", "CANCEL"})
_CONSTRAINT_HINTS = (
    "already contains",  # UNIQUE index
    "couldn't coerce",  # type
    "expected",  # type
    "must conform to",  # ASSERT
    "readonly",  # READONLY
    "no such field exists",  # SCHEMAFULL
    "does not exist",  # ENFORCED relation endpoints, REFERENCE ... REJECT
    "cannot delete",  # REFERENCE ... REJECT
)
_THROWN = "An error occurred: "
# ``THROW 'code: message'`` in schema events and domain queries -> the error to raise.
THROW_CODES: dict[str, type[e.StoreError]] = {
    "not_found": e.NotFoundError,
    "already_exists": e.AlreadyExistsError,
    "stale": e.StaleError,
    "dimension": e.DimensionError,
    "embedding_space": e.EmbeddingSpaceError,
    "reembedding": e.StoreStateError,
    "invalid": e.InvariantError,
    "default_branch": e.InvariantError,
    "immutable": e.ImmutableError,
    "permission_denied": e.PermissionDeniedError,
}


def results(raw: Any, sh: QueryShape) -> list[Any]:
    """Every statement's converted result; the root-cause failure raised as our error."""
    if not isinstance(raw, dict):
        raise e.TransportError(f"unexpected response from the engine: {type(raw).__name__}")
    err = raw.get("error")
    if err:
        if isinstance(err, dict):
            raise error_for(err.get("kind"), str(err.get("message", err)), None, None, None)
        raise e.QueryError(str(err))
    entries = raw.get("result")
    if not isinstance(entries, list):
        raise e.TransportError("unexpected response from the engine: no result list")
    failed: tuple[int, dict[str, Any]] | None = None
    for index, entry in enumerate(entries):
        if entry.get("status") == "OK":
            continue
        # In a failed transaction every statement reports an error; the one that is not
        # "not executed" is the cause.
        if failed is None or (not _not_executed(entry) and _not_executed(failed[1])):
            failed = (index, entry)
    if failed is not None:
        index, entry = failed
        text = sh.statements[index] if len(sh.statements) == len(entries) else None
        details = entry.get("details")
        raise error_for(entry.get("kind"), str(entry.get("result")), details, index + 1, text)
    return [from_sdk(entry.get("result")) for entry in entries]


def _not_executed(entry: dict[str, Any]) -> bool:
    details = entry.get("details")
    if isinstance(details, dict) and details.get("kind") == "NotExecuted":
        return True
    message = str(entry.get("result", ""))
    return message.startswith(("The query was not executed", "Cannot COMMIT: the transaction"))


def error_for(
    kind: Any, message: str, details: Any, statement: int | None, text: str | None
) -> e.StoreError:
    """The error for a failed statement: its kind, message and details as the engine sent
    them; ``statement`` (1-based) and ``text`` say where, when known."""
    detail_kind = details.get("kind") if isinstance(details, dict) else None
    if detail_kind == "TransactionConflict" or "can be retried" in message:
        where = f"statement {statement}: " if statement else ""
        return e.ConflictError(where + message)
    if "Incorrect vector dimension" in message:  # the vector index's own check
        where = f"statement {statement}: " if statement else ""
        return e.DimensionError(where + message)
    cls: type[e.QueryError]
    if kind == "AlreadyExists":
        cls = e.AlreadyExistsError
    elif kind == "NotFound":
        cls = e.NotFoundError
    elif kind == "NotAllowed" or "is a protected variable" in message:
        cls = e.PermissionDeniedError
    elif kind == "Validation":
        cls = e.QuerySyntaxError
    elif kind == "Thrown" or _THROWN in message:
        # A THROW, directly or inside an event ("Error while processing event e: An error ...").
        message = message.partition(_THROWN)[2] or message
        code, sep, rest = message.partition(": ")
        if sep and code in THROW_CODES:
            # Schema events and domain queries THROW 'code: text' to name the failure.
            # These are the domain's own answers ("no decision X"): the message is the whole
            # story, so it is not prefixed with the statement that raised it.
            thrown = THROW_CODES[code]
            if issubclass(thrown, e.QueryError):
                # A guard's code says what kind of rule it is ("immutable: ..."): kept.
                return thrown(message if issubclass(thrown, e.ThrownError) else rest, kind="Thrown")
            return thrown(rest)
        cls = e.ThrownError
    elif kind == "Internal" and any(h in message.lower() for h in _CONSTRAINT_HINTS):
        cls = e.ConstraintError
    else:
        cls = e.QueryError
    return cls(message, statement=statement, statement_text=text, kind=str(kind) if kind else None)


def map_exception(exc: BaseException, *, context: str) -> e.StoreError:
    """Translate an exception raised by the SDK or the engine binding."""
    if isinstance(exc, e.StoreError):
        return exc
    message = str(exc)
    if isinstance(exc, sdk.TransportError):
        if "already locked" in message:
            return e.StoreLockedError(
                f"{context}: the store is open in another process or connection ({message})"
            )
        if isinstance(exc, sdk.TransportTimeoutError):
            return e.QueryTimeoutError(f"{context}: {message}")
        return e.TransportError(f"{context}: {message}")
    if isinstance(exc, sdk.ServerError):
        kind = getattr(exc, "kind", None)
        return error_for(kind, message, getattr(exc, "details", None), None, None)
    if isinstance(exc, sdk.UnsupportedEngineError | sdk.InvalidUrlError):
        return e.ConfigError(f"{context}: {message}")
    if isinstance(exc, TypeError | ValueError | sdk.SurrealError):
        # Raised while encoding parameters: nothing was sent.
        return e.ValidationError(f"{context}: cannot send a value: {message}")
    if isinstance(exc, OSError | ConnectionError):
        return e.TransportError(f"{context}: {message}")
    return e.TransportError(f"{context}: {type(exc).__name__}: {message}")


def drop_use(raw: Any) -> Any:
    """The answer of a query sent with a ``USE`` prefix, as if sent without it."""
    if not isinstance(raw, dict) or not isinstance(raw.get("result"), list):
        return raw
    entries = raw["result"]
    if entries and entries[0].get("status") != "OK":
        return {"result": entries[:1]}
    return {**raw, "result": entries[1:]}


def pick(results: list[Any], sh: QueryShape) -> list[Any]:
    """The rows of the last statement other than ``BEGIN`` / ``COMMIT`` / ``CANCEL``: a single
    value is one row, ``NONE`` none."""
    value: Any = None
    if len(sh.keywords) == len(results):
        for keyword, result in zip(reversed(sh.keywords), reversed(results), strict=True):
            if keyword not in _TXN_KEYWORDS:
                value = result
                break
    elif results:
        value = results[-1]
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@lru_cache(maxsize=512)
def _adapter(into: Any) -> TypeAdapter[Any]:
    return TypeAdapter(list[into])


def check_into(into: Any) -> None:
    """Refuse, before a query is sent, what rows cannot be read into: a type (int, a model)
    or a typing form (list[int], int | None) is accepted; a string would be taken for a
    forward reference."""
    if not isinstance(into, type) and get_origin(into) is None:
        raise e.ValidationError(f"rows are read into a type, not {into!r}")


def validate_rows(rows: list[Any], into: type[T]) -> list[T]:
    """``rows`` validated into ``into``: ``ResultError`` if they do not match it."""
    try:
        adapter: TypeAdapter[list[T]] = _adapter(cast(Hashable, into))
        result = adapter.validate_python(rows)
    except (TypeError, PydanticUserError) as exc:
        raise e.ValidationError(f"cannot read rows into {into!r}: {exc}") from None
    except PydanticValidationError as exc:
        name = getattr(into, "__name__", repr(into))
        raise e.ResultError(f"rows do not match {name}: {exc}") from None
    return result
