"""The store: one connection, typed queries, error mapping, write serialisation and retries.

This is the only module that imports the ``surrealdb`` SDK. Everything the SDK or the engine
raises or returns is translated here: errors into ``_errors``, record ids into ``RecordId``,
durations into ``timedelta``, ``NULL`` into ``None``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import datetime as dt
import enum
import hashlib
import logging
import os
import random
import re
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import EllipsisType, TracebackType
from typing import Any, Final, Literal, TypeVar, cast, get_origin

import anyio
import cbor2
import surrealdb
from pydantic import BaseModel, PydanticUserError, TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from surrealdb.connections.async_embedded import AsyncEmbeddedSurrealConnection
from surrealdb.connections.url import Url, UrlScheme
from surrealdb.connections.utils_mixin import mapped_engine_errors
from surrealdb.data import cbor as sdk_cbor
from surrealdb.data.types import constants as sdk_constants
from surrealdb.request_message.message import RequestMessage
from surrealdb.request_message.methods import RequestMethod

from . import _errors as e
from . import _retry
from ._config import Settings, redact_url, url_scheme
from ._executor import Executor, SchemaAccess, ScratchStore
from ._migrate import Migrator
from ._space import declare_space
from ._surql import QueryShape, role_of, shape
from ._types import JSON_NULL, RecordId, check_text

__all__ = ["Executor", "SignIn", "Store", "StoreState", "StoreStats"]

T = TypeVar("T")
log = logging.getLogger("surreal_store")

_TXN_KEYWORDS = frozenset({"BEGIN", "COMMIT", "CANCEL"})
_SCALARS = (str, int, float, bool, type(None), bytes, dt.datetime)
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


class StoreState(enum.Enum):
    """Life cycle of a :class:`Store`: it opens once and closes once."""

    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(slots=True)
class StoreStats:
    """Counters, for observability and tests (``store.stats``)."""

    queries: int = 0
    """Calls that reached the database (each attempt counts)."""
    retries: int = 0
    """Attempts after the first, over all calls."""
    conflicts: int = 0
    """Write conflicts seen (retried or not)."""
    by_error: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SignIn:
    """Who a store's session is (``store.signed_in_as``).

    ``kind``: ``anonymous`` (an embedded store opened without credentials: full access, as
    anyone who can open its files has), ``root`` (a server's root user), ``user`` (a database
    user of the tenant, with ``role`` OWNER, EDITOR or VIEWER) or ``agent`` (record access:
    bound by the schema's permissions to the agent's scopes, decisions and runs).
    """

    kind: Literal["anonymous", "root", "user", "agent"]
    name: str | None = None
    role: str | None = None

    @property
    def restricted(self) -> bool:
        """Whether the engine hides records from this session (an agent) or refuses its
        writes (a VIEWER): then a record it names but cannot see is :class:`NotVisibleError`."""
        return self.kind == "agent" or self.role == "VIEWER"


_ANONYMOUS = SignIn("anonymous")


class Store:
    """An open connection to one SurrealDB namespace and database.

    ::

        async with Store("surrealkv://./agent.db") as store:
            rows = await store.query("SELECT * FROM memory WHERE key = $key", Memory, key="k")

    Arguments left as ``None`` come from :class:`Settings` (``SURREAL_STORE_*`` variables).
    On open, pending schema files are applied (``migrate=False``: only checked, and a database
    newer than this code is refused either way). ``check_schema=False`` skips both, for tools
    that inspect a database's schema state themselves (``surreal-store status``).
    ``connection`` wraps an already open SDK connection, which the store then never closes.

    Writes on an embedded engine go through one lock (the engine loses acknowledged writes
    under concurrent writers on one connection); reads stay concurrent. Calls that may be
    replayed are retried on :class:`TransportError` and :class:`ConflictError`: reads, calls
    marked ``idempotent=True``, and - on a conflict only - queries that are one statement or one
    ``BEGIN ... COMMIT`` block, since a conflict means none of it was applied.

    The keywords ``idempotent`` and (for ``execute``) ``timeout_s`` are reserved: they cannot
    name query parameters.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        namespace: str | None = None,
        database: str | None = None,
        tenant: str | None = None,
        username: str | None = None,
        password: str | None = None,
        agent: str | None = None,
        agent_secret: str | None = None,
        settings: Settings | None = None,
        migrate: bool | None = None,
        schema_dir: str | Path | None = None,
        check_schema: bool = True,
        connection: surrealdb.AsyncSurrealConnection | None = None,
    ) -> None:
        overrides: dict[str, Any] = {
            "url": url,
            "namespace": namespace,
            "database": database,
            "tenant": tenant,
            "username": username,
            "password": password,
            "agent": agent,
            "agent_secret": agent_secret,
            "auto_migrate": migrate,
        }
        self._settings = (
            settings.replace(**overrides) if settings is not None else Settings.load(**overrides)
        )
        self._schema_dir = Path(schema_dir) if schema_dir is not None else None
        self._check_schema = check_schema
        self._db: surrealdb.AsyncSurrealConnection | None = connection
        self._owns_connection = connection is None
        self._state = StoreState.UNOPENED
        self._loop: asyncio.AbstractEventLoop | None = None
        self._write_lock = anyio.Lock(fast_acquire=True) if self._settings.is_embedded else None
        self._migrate_lock = anyio.Lock()
        self._shared: _Shared | None = None
        self._session: _Session | None = None  # this store's session on a shared connection
        self._signin = _ANONYMOUS
        self._engine_version = ""
        self._attached: dict[tuple[str, str, str], Any] = {}
        self.stats = StoreStats()

    def __repr__(self) -> str:
        s = self._settings
        who = ""
        if s.agent is not None:
            who = f" agent={s.agent}"
        elif s.username is not None:
            who = f" user={s.username}"
        return (
            f"<Store {redact_url(s.url)} ns={s.namespace} db={s.database}{who} "
            f"state={self._state.value}>"
        )

    # -- life cycle --------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def state(self) -> StoreState:
        return self._state

    @property
    def engine_version(self) -> str:
        """The engine's version string, e.g. ``surrealdb-3.2.4`` (empty before open)."""
        return self._engine_version

    @property
    def schema_dir(self) -> Path | None:
        return self._schema_dir

    @property
    def signed_in_as(self) -> SignIn:
        """Who this store's session is; anonymous before open."""
        return self._signin

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the store was opened on (its connection lives there); ``None``
        before open. Sync wrappers (LangGraph, LangChain) run their calls on it."""
        return self._loop

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Connect, sign in, select the namespace and database, and check or apply the schema."""
        if self._state is not StoreState.UNOPENED:
            raise e.StoreStateError(f"a store opens once; this one is {self._state.value}")
        s = self._settings
        try:
            with anyio.fail_after(s.connect_timeout_s):
                if self._db is None and s.path is not None:
                    await self._open_shared()
                else:
                    if self._db is None:
                        self._db = _connection(s.url)
                        await self._db.connect()
                    self._signin = await _sign_in(self._db, s)
                    await self._db.use(s.namespace, s.database)
                assert self._db is not None
                self._engine_version = str(await self._db.version())
        except TimeoutError:
            await self._leave_session()
            await self._close_connection()
            raise e.QueryTimeoutError(
                f"could not connect to {redact_url(s.url)} within {s.connect_timeout_s}s"
            ) from None
        except Exception as exc:
            await self._leave_session()
            await self._close_connection()
            raise _map_exception(exc, context=f"opening {redact_url(s.url)}") from exc
        self._state = StoreState.OPEN
        self._loop = asyncio.get_running_loop()
        if self._shared is not None:
            tenant = (s.namespace, s.database)
            self._shared.tenants[tenant] = self._shared.tenants.get(tenant, 0) + 1
        if s.is_embedded:
            _engine.opened(self)
        if not self._check_schema:
            return
        try:
            migrator = Migrator(self, schema_dir=self._schema_dir)
            if self._signin.restricted:
                # An agent or a viewer cannot migrate: the schema is the owner's to bring up
                # to date, and using an older one could bypass rules the newer one adds.
                status = await migrator.check()
                if status.pending or not status.access_layer_current:
                    names = ", ".join(f.label for f in status.pending) or "its access layer"
                    raise e.SchemaError(
                        f"the database needs migrating ({names}); open it once as its owner"
                    )
            elif s.auto_migrate:
                await migrator.migrate()
            else:
                await migrator.check()
            if s.embedding_model is not None and s.embedding_dimension is not None:
                await declare_space(self, model=s.embedding_model, dimension=s.embedding_dimension)
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Close the connection if this store opened it. Safe to call more than once."""
        if self._state is StoreState.CLOSED:
            return
        if self._state is StoreState.OPEN and self._last_of_tenant():
            # While the connection is still open: the recall index records in the database
            # which saved generation of its files is current.
            await self._close_attached(self)
        self._state = StoreState.CLOSED
        await self._leave_session()
        await self._close_connection()

    def _last_of_tenant(self) -> bool:
        """Whether this is the last open store of its database on its connection (stores of
        other tenants may share it)."""
        if self._shared is None:
            return True
        key = (self._settings.namespace, self._settings.database)
        self._shared.tenants[key] -= 1
        return self._shared.tenants[key] <= 0

    async def _close_attached(self, store: Store | None) -> None:
        """Close the attachments of this store's database: ``aclose(store)`` (``store`` is
        ``None`` once the connection is gone)."""
        holder = self._attached if self._shared is None else self._shared.attached
        tenant = (self._settings.namespace, self._settings.database)
        for key in [k for k in holder if k[:2] == tenant]:
            close = getattr(holder.pop(key), "aclose", None)
            if close is not None:
                try:
                    await close(store)
                except Exception:  # a save that fails loses nothing: the feed has it all
                    log.exception("closing the store's %s failed", key[2])

    async def _open_shared(self) -> None:
        """Connect to embedded files, or share this process's connection to them.

        An embedded store's files admit one connection per process, so the stores of a process
        on the same files share it (and its write lock). Each store queries through an engine
        session of its own identity: namespace, database, kind of sign-in, name and a digest of
        the credential (:func:`_identity`). Stores of the same identity share a session; a new
        identity gets a new session, signed in by the engine, so that a sign-in is never
        assumed from another one and each session reaches what its own sign-in may."""
        s = self._settings
        assert s.path is not None
        key = str(s.path.expanduser().resolve())
        shared = _SHARED.get(key)
        if shared is None:
            shared = _SHARED[key] = _Shared(key)
        shared.users += 1
        self._shared = shared
        async with shared.open_lock:
            if shared.db is None:
                db = _EmbeddedConnection(url=s.url)
                try:
                    await db.connect()
                except BaseException:
                    await _close_quietly(db, s.url)
                    raise
                shared.db = db
                shared.loop = asyncio.get_running_loop()
                if url_scheme(s.url).startswith("surrealkv"):
                    shared.wal = Path(key) / "wal"
            if shared.loop is not asyncio.get_running_loop():
                raise e.StoreLockedError(
                    f"{redact_url(s.url)} is open in this process on another event loop; "
                    "stores sharing embedded files share a loop"
                )
            who = _identity(s)
            session = shared.sessions.get(who)
            if session is None:
                session = _Session(who, s)
                await _start_session(shared.db, session, shared)
                shared.sessions[who] = session
            session.users += 1
            self._session = session
        self._db, self._signin = shared.db, session.signin
        self._write_lock = shared.write_lock

    async def _leave_session(self) -> None:
        """Let go of this store's session on a shared connection; the last store of a session
        ends it in the engine, unless the connection closes anyway."""
        session, self._session = self._session, None
        shared = self._shared
        if session is None or shared is None:
            return
        session.users -= 1
        if session.users > 0:
            return
        if shared.sessions.get(session.key) is session:
            del shared.sessions[session.key]
        db = shared.db
        if db is not None and shared.users > 1 and session.id is not None:
            try:
                await db.detach_session(session.id)
            except Exception as exc:  # the session dies with the connection anyway
                log.debug("ending an engine session failed: %s", exc)
            finally:
                _engine.answered()

    def _release(self) -> surrealdb.AsyncSurrealConnection | None:
        """Let go of the connection; return it if this store must close it: it opened it and,
        when stores share it, is the last of them."""
        db, self._db = self._db, None
        shared, self._shared = self._shared, None
        if shared is None:
            return db if self._owns_connection else None
        shared.users -= 1
        if shared.users > 0:
            return None
        _SHARED.pop(shared.key, None)
        db, shared.db = shared.db, None
        return db

    async def _close_connection(self) -> None:
        attached = self._attached if self._shared is None else self._shared.attached
        db = self._release()
        if db is not None or (self._shared is None and not self._owns_connection):
            # Last user of the connection (or of a connection it was lent): what attachments
            # are left go, without a connection to use.
            for obj in list(attached.values()):
                close = getattr(obj, "aclose", None)
                if close is not None:
                    try:
                        await close(None)
                    except Exception:
                        log.exception("closing %r failed", obj)
            attached.clear()
        if db is not None:
            await _close_quietly(db, self._settings.url)

    def _close_at_exit(self) -> None:
        """Close a connection its owner left open, from the interpreter's exit hook."""
        self._state = StoreState.CLOSED
        db = self._release()
        if db is not None:
            with contextlib.suppress(Exception):
                asyncio.run(db.close())
            _engine.answered()

    def attached(self, name: str, make: Callable[[], T]) -> T:
        """The object named ``name`` kept with this store's connection for its database (made by
        ``make()`` on first use): stores sharing embedded files share it. When the last store
        of its database closes, its ``aclose(store)`` is awaited, if it has one, with that
        store still open (``aclose(None)`` if the connection went first). For the layers
        above the client (the memory layer's recall index); not for applications."""
        holder = self._shared.attached if self._shared is not None else self._attached
        key = (self._settings.namespace, self._settings.database, name)
        if key not in holder:
            holder[key] = make()
        return cast(T, holder[key])

    # -- queries -----------------------------------------------------------------------------

    async def query(
        self, text: str, into: type[T], /, *, idempotent: bool = False, **params: Any
    ) -> list[T]:
        """Run ``text`` and validate the rows of its result into ``into`` (a model or a type).

        The result is that of the last statement other than ``BEGIN`` / ``COMMIT`` / ``CANCEL``;
        a single value counts as one row and ``NONE`` as none.
        """
        _check_into(into)
        results, sh = await self._run(text, params, idempotent=idempotent)
        return _validate_rows(_pick(results, sh), into)

    async def query_single(
        self, text: str, into: type[T], /, *, idempotent: bool = False, **params: Any
    ) -> T | None:
        """Like :meth:`query` for at most one row: ``None`` if none, ``ResultError`` if more."""
        rows = await self.query(text, into, idempotent=idempotent, **params)
        if len(rows) > 1:
            raise e.ResultError(f"expected at most one row, got {len(rows)}")
        return rows[0] if rows else None

    async def query_required_single(
        self, text: str, into: type[T], /, *, idempotent: bool = False, **params: Any
    ) -> T:
        """Like :meth:`query` for exactly one row: ``NotFoundError`` if none, ``ResultError`` if
        more."""
        rows = await self.query(text, into, idempotent=idempotent, **params)
        if not rows:
            if self._signin.restricted:
                raise e.NotVisibleError(
                    "the query returned no row (or none visible to this sign-in)"
                )
            raise e.NotFoundError("the query returned no row")
        if len(rows) > 1:
            raise e.ResultError(f"expected exactly one row, got {len(rows)}")
        return rows[0]

    async def execute(
        self,
        text: str,
        /,
        *,
        idempotent: bool = False,
        timeout_s: float | EllipsisType | None = ...,
        **params: Any,
    ) -> list[Any]:
        """Run ``text`` and return every statement's result, converted but not validated.

        ``timeout_s`` replaces the store's query timeout for this call (``None``: no limit),
        for statements known to be long, such as an index build."""
        results, _ = await self._run(text, params, idempotent=idempotent, timeout_s=timeout_s)
        return results

    # -- machinery ---------------------------------------------------------------------------

    def schema_access(self) -> SchemaAccess:
        """The interface this store hands its migrator (:class:`Migrator`): its migration
        lock, an unqueued write for the schema lock's renewal, a scratch store. Not for
        applications."""
        return _SchemaAccess(self)

    async def _query_unserialised(self, text: str, into: type[T], /, **params: Any) -> list[T]:
        """:meth:`query` without the embedded write lock, retried as idempotent.

        Only for writes to records that no serialised write can touch at the same time (the
        migration lock's renewal)."""
        _check_into(into)
        results, sh = await self._run(text, params, idempotent=True, serialise=False)
        return _validate_rows(_pick(results, sh), into)

    async def _run(
        self,
        text: str,
        params: Mapping[str, Any],
        *,
        idempotent: bool,
        serialise: bool = True,
        timeout_s: float | EllipsisType | None = ...,
    ) -> tuple[list[Any], QueryShape]:
        if self._state is not StoreState.OPEN or self._db is None:
            raise e.StoreStateError(f"the store is {self._state.value}; open it first")
        sh = shape(check_text(text, "query text"))
        if "USE" in sh.keywords:
            raise e.PermissionDeniedError(
                "USE is refused: a store is bound to one namespace and database (its tenant); "
                "open another Store for another; nothing was sent"
            )
        if self._signin.role == "VIEWER" and sh.writes:
            # The engine would skip a VIEWER's writes without a word; say it instead.
            verbs = ", ".join(sorted(sh.writes))
            raise e.PermissionDeniedError(
                f"{self._signin.name!r} is a VIEWER and may only read; this query writes "
                f"({verbs}); nothing was sent"
            )
        sdk_params = {k: _to_sdk(v) for k, v in params.items()} if params else None
        try:
            # The common case pays nothing for the retry machinery.
            return await self._attempt(text, sdk_params, sh, serialise, timeout_s), sh
        except (e.TransportError, e.ConflictError) as exc:
            if not _retry.may_replay(exc, sh, idempotent) or self._settings.max_attempts < 2:
                raise
            log.debug("retrying after %s", exc)
        s = self._settings
        await anyio.sleep(random.uniform(0, s.retry_initial_s))
        retrying = _retry.replays(
            shape=sh,
            idempotent=idempotent,
            attempts=s.max_attempts - 1,
            initial_s=s.retry_initial_s,
            max_s=s.retry_max_s,
        )
        async for attempt in retrying:
            with attempt:
                self.stats.retries += 1
                return await self._attempt(text, sdk_params, sh, serialise, timeout_s), sh
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _send(self, text: str, params: dict[str, Any] | None) -> Any:
        """One call to the engine, on the connection as it is now: a checkpoint may have
        reopened it while this call waited for the write lock. Counted as in flight (a
        checkpoint waits for those) only while it runs, never while it waits."""
        shared = self._shared
        if shared is None:
            assert self._db is not None
            return await self._db.query_raw(text, params)
        db = self._db = shared.db
        session = self._session
        if db is None or session is None:
            raise e.StoreStateError("the store is closed")
        shared.busy += 1
        try:
            return await db.query_raw(text, params, session_id=session.id)
        finally:
            shared.busy -= 1
            if shared.busy == 0 and shared.drained is not None:
                shared.drained.set()

    async def _attempt(
        self,
        text: str,
        params: dict[str, Any] | None,
        sh: QueryShape,
        serialise: bool,
        timeout_s: float | EllipsisType | None = ...,
    ) -> list[Any]:
        shared = self._shared
        if shared is not None:
            if not sh.read_only and shared.wal_bytes() > _WAL_LIMIT:
                # Before the write, so that a failure to reopen fails a write never sent.
                try:
                    await shared.checkpoint(self._settings)
                except Exception as exc:
                    raise _map_exception(exc, context="reopening the store") from exc
            while shared.reopened is not None:  # a checkpoint is reopening the connection
                await shared.reopened.wait()
        if (self._db if shared is None else shared.db) is None:
            raise e.StoreStateError("the store is closed")
        self.stats.queries += 1
        timeout = self._settings.query_timeout_s if timeout_s is ... else timeout_s
        try:
            # asyncio's own timeout, not anyio.fail_after: the SDK runs only on asyncio, and
            # anyio's cancel scope costs about 30 us more per query, some 3% of a commit.
            use = self._session.use if self._session is not None else None
            if use is not None:
                text = use + text
            async with asyncio.timeout(timeout):
                if self._write_lock is not None and serialise and not sh.read_only:
                    async with self._write_lock:
                        raw = await self._send(text, params)
                else:
                    raw = await self._send(text, params)
            _engine.answered()
            if use is not None:
                raw = _drop_use(raw)
        except TimeoutError:
            raise e.QueryTimeoutError(f"query did not finish within {timeout}s") from None
        except Exception as exc:
            err = _map_exception(exc, context="query")
            self._count(err)
            raise err from exc
        try:
            return _results(raw, sh)
        except e.StoreError as err:
            self._count(err)
            raise

    def _count(self, err: e.StoreError) -> None:
        name = type(err).__name__
        self.stats.by_error[name] = self.stats.by_error.get(name, 0) + 1
        if isinstance(err, e.ConflictError):
            self.stats.conflicts += 1


class _SchemaAccess:
    """:class:`SchemaAccess` for one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def lock(self) -> anyio.Lock:
        return self._store._migrate_lock

    async def renew(self, text: str, into: type[T], /, **params: Any) -> list[T]:
        return await self._store._query_unserialised(text, into, **params)

    @contextlib.asynccontextmanager
    async def scratch(self) -> AsyncIterator[ScratchStore]:
        async with Store(settings=self._store.settings.scratch(), check_schema=False) as s:
            yield s


# -- the SDK connection ------------------------------------------------------------------


_TAG_NONE: Final = sdk_constants.TAG_NONE


def _decode_tag(first: Any, second: Any) -> Any:
    # cbor2 6.3's C decoder calls the hook as (tag, immutable), its documentation says
    # (decoder, tag): take the tag from where it is.
    tag = first if isinstance(first, cbor2.CBORTag) else second
    if tag.tag == _TAG_NONE:
        # Most tags in an answer: every absent field of every row (seven per memory).
        return None
    if tag.tag == _TAG_DATETIME and type(tag.value) is tuple:
        return _datetime(*tag.value)
    # Inside a tag it decodes arrays as tuples and maps as FrozenDicts (they might be
    # keys); the SDK's decoder gives lists and dicts (a record id's array key).
    return sdk_cbor.tag_decoder(None, cbor2.CBORTag(tag.tag, _thaw(tag.value)))  # type: ignore[arg-type]


_TAG_DATETIME: Final = sdk_constants.TAG_DATETIME_COMPACT
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_new_datetime: Final = dt.datetime.__new__
_set_slot: Final = object.__setattr__


def _datetime(seconds: int = 0, nanos: int = 0) -> dt.datetime:
    """The SDK's PreciseDatetime for ``[seconds, nanoseconds]`` (tag 12, trailing zeros
    omitted), as its decoder makes it, in a third of the time: recall decodes several per
    memory."""
    micros, rest = divmod(nanos, 1000)
    at = _EPOCH + dt.timedelta(seconds=seconds, microseconds=micros)
    value = _new_datetime(
        surrealdb.PreciseDatetime, at.year, at.month, at.day, at.hour, at.minute, at.second,
        at.microsecond, dt.UTC,
    )  # fmt: skip
    _set_slot(value, "nanosecond", rest)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    if isinstance(value, cbor2.frozendict):
        return {k: _thaw(v) for k, v in value.items()}
    return value


def _decode(data: bytes) -> Any:
    """The SDK's CBOR decoding, by cbor2's C decoder with the SDK's own tag decoder.

    The SDK decodes with a pure-Python copy of cbor2: some 0.5 ms per 384-d vector, which made
    reading vectors (a change feed, a rebuild) cost more than the engine's work. The one
    difference, CBOR null as ``None`` where the SDK has ``Null``, is erased at this boundary
    anyway (:func:`_from_sdk` maps ``Null`` to ``None``); tests/test_client compares both."""
    return cbor2.loads(data, tag_hook=_decode_tag)


_EMBEDDED_SCHEMES = frozenset(
    {
        UrlScheme.MEM,
        UrlScheme.MEMORY,
        UrlScheme.FILE,
        UrlScheme.SURREALKV,
        UrlScheme.SURREALKV_VERSIONED,
    }
)


class _EmbeddedConnection(AsyncEmbeddedSurrealConnection):
    """The SDK's embedded connection, decoding its answers with :func:`_decode`."""

    async def _send(self, message: Any, process: str, bypass: bool = False) -> dict[str, Any]:
        with mapped_engine_errors(process):
            raw = await self._db.execute(message.WS_CBOR_DESCRIPTOR)
        response = _decode(raw)
        if not bypass:
            self.check_response_for_error(response, process)
        return response if isinstance(response, dict) else {}

    # The engine keeps several sessions on one embedded connection (the RPC ``attach``), each
    # with its own sign-in, namespace and database; the SDK's embedded class refuses them
    # (``UnsupportedFeatureError``), so they are asked for here.

    async def attach_session(self, session_id: uuid.UUID) -> None:
        """Start an engine session ``session_id`` (not signed in, no database selected)."""
        await self._send(RequestMessage(RequestMethod.ATTACH, session=session_id), "attach")

    async def detach_session(self, session_id: uuid.UUID) -> None:
        """End the engine session ``session_id``."""
        await self._send(RequestMessage(RequestMethod.DETACH, session=session_id), "detach")


def _connection(url: str) -> surrealdb.AsyncSurrealConnection:
    # Built once: an embedded connection object holds its files from construction.
    if Url(url).scheme in _EMBEDDED_SCHEMES:
        return _EmbeddedConnection(url=url)
    return surrealdb.AsyncSurreal(url)


# -- sign-in and shared embedded connections ----------------------------------------------------


class _Session:
    """One engine session on a shared embedded connection: one identity (:func:`_identity`),
    signed in by the engine, with its namespace and database selected.

    A session that signs in is one the engine attached for it (``id``). The anonymous ones
    (no credentials: full access, as whoever opens the files has) are the connection's own
    session, the only one the engine opens with full access: the first selects its database
    on it, the others name theirs in each query (``use``, a ``USE`` in the same request)."""

    def __init__(self, key: tuple[str, ...], settings: Settings) -> None:
        self.key = key
        anonymous = settings.agent is None and settings.username is None
        self.id: uuid.UUID | None = None if anonymous else uuid.uuid4()
        self.settings = settings  # to sign in again when the connection is reopened
        self.signin = _ANONYMOUS
        self.use: str | None = None
        self.users = 0


async def _start_session(db: _EmbeddedConnection, session: _Session, shared: _Shared) -> None:
    """Start ``session`` on ``db``: the engine checks its sign-in, then it selects its
    namespace and database. Nothing of it is left behind if any step fails."""
    s = session.settings
    where = (s.namespace, s.database)
    try:
        if session.id is None:
            if shared.home is None:
                await db.use(*where)
                shared.home = where
            if where != shared.home:
                session.use = f"USE NS {s.namespace} DB {s.database};\n"
            return
        await db.attach_session(session.id)
        try:
            session.signin = await _sign_in(db, s, session=session.id)
            await db.use(*where, session_id=session.id)
        except BaseException:
            with contextlib.suppress(Exception):
                await db.detach_session(session.id)
            raise
    finally:
        _engine.answered()


class _Shared:
    """One process's connection to one set of embedded files, shared by its stores."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.db: _EmbeddedConnection | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sessions: dict[tuple[str, ...], _Session] = {}
        self.home: tuple[str, str] | None = None  # what the connection's own session selected
        self.write_lock = anyio.Lock(fast_acquire=True)
        self.open_lock = anyio.Lock()
        self.users = 0
        self.attached: dict[tuple[str, str, str], Any] = {}
        self.tenants: dict[tuple[str, str], int] = {}  # open stores by (namespace, database)
        self.busy = 0  # queries in flight on `db`
        self.drained: anyio.Event | None = None  # set when `busy` falls to 0 during a reopen
        self.reopened: anyio.Event | None = None  # while reopening: set once `db` is the new one
        self.wal: Path | None = None  # a surrealkv store's write-ahead log, watched for size
        self.reopens = 0

    def wal_bytes(self) -> int:
        if self.wal is None:
            return 0
        try:
            return sum(f.stat().st_size for f in os.scandir(self.wal) if f.is_file())
        except OSError:
            return 0

    async def checkpoint(self, s: Settings) -> None:
        """Close and reopen the connection, which writes the engine's memory table out to its
        files, once the write-ahead log holds more than :data:`_WAL_LIMIT` bytes.

        The embedded engine (surrealdb-embedded 3.0.0b10, surrealkv) keeps every write in
        memory and in its log until the connection closes, and stops answering writes for
        good once the log reaches its third 1 GB segment (about 2.1 GB written in one
        connection; the SDK alone, without this library, does the same). Closing writes it out
        (and empties the log); reopening continues from there. Writes wait for this (they hold
        the write lock), reads in flight finish first and new ones wait."""
        async with self.write_lock:
            if self.wal_bytes() <= _WAL_LIMIT or self.db is None:
                return  # another task checkpointed meanwhile
            self.reopened = anyio.Event()
            try:
                if self.busy:
                    self.drained = anyio.Event()
                    await self.drained.wait()
                old, self.db = self.db, None
                t0 = time.perf_counter()
                await _close_quietly(old, s.url)
                db = _EmbeddedConnection(url=s.url)
                try:
                    await db.connect()
                    # Every session again, under its own id: the stores keep theirs.
                    if self.home is not None:
                        await db.use(*self.home)
                    for session in list(self.sessions.values()):
                        if session.id is not None:
                            await _start_session(db, session, self)
                except BaseException:
                    await _close_quietly(db, s.url)
                    raise
                self.db = db
                self.reopens += 1
                log.info(
                    "reopened %s to write its memory table out (%.1fs)",
                    redact_url(s.url),
                    time.perf_counter() - t0,
                )
            finally:
                self.drained = None
                self.reopened.set()
                self.reopened = None


# The write-ahead log's size past which an embedded surrealkv connection is reopened (see
# _Shared.checkpoint): well under the 2.1 GB at which the engine stops.
_WAL_LIMIT: Final = 1 << 30

_SHARED: dict[str, _Shared] = {}
_USER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _identity(s: Settings) -> tuple[str, ...]:
    """Who a store is, whole: namespace, database, kind of sign-in, name and a digest of the
    credential (a secret is never kept in the clear). Stores share an engine session only when
    all of it is equal."""
    if s.agent is not None and s.agent_secret is not None:
        kind, name, credential = "agent", s.agent, s.agent_secret.get_secret_value()
    elif s.username is not None and s.password is not None:
        kind, name, credential = "user", s.username, s.password.get_secret_value()
    else:
        return (s.namespace, s.database, "anonymous", "", "")
    # The digest is keyed by the rest of the identity: equal secrets of two sign-ins differ.
    digest = hashlib.sha256(
        "\x00".join((s.namespace, s.database, kind, name, credential)).encode()
    ).hexdigest()
    return (s.namespace, s.database, kind, name, digest)


async def _sign_in(
    db: surrealdb.AsyncSurrealConnection, s: Settings, *, session: uuid.UUID | None = None
) -> SignIn:
    """Sign ``db`` (its engine session ``session``) in as the settings say; return who it is.
    A refused sign-in is a :class:`PermissionDeniedError` that does not say which part was
    wrong."""
    try:
        return await _try_sign_in(db, s, session)
    except surrealdb.SurrealError as exc:
        if isinstance(exc, surrealdb.TransportError):
            raise
        who = f"agent {s.agent!r}" if s.agent is not None else f"user {s.username!r}"
        raise e.PermissionDeniedError(
            f"sign-in as {who} to {s.namespace}/{s.database} was refused: no such "
            "sign-in, or a wrong secret"
        ) from None


async def _try_sign_in(
    db: surrealdb.AsyncSurrealConnection, s: Settings, session: uuid.UUID | None
) -> SignIn:
    # A session of a shared embedded connection is named; a connection of its own is not (and
    # an HTTP connection has no sessions).
    on: dict[str, Any] = {} if session is None else {"session_id": session}
    if s.agent is not None and s.agent_secret is not None:
        await db.signin(
            {
                "namespace": s.namespace,
                "database": s.database,
                "access": "agent",
                "variables": {"agent": s.agent, "secret": s.agent_secret.get_secret_value()},
            },
            **on,
        )
        return SignIn("agent", s.agent)
    if s.username is None or s.password is None:
        return _ANONYMOUS
    password = s.password.get_secret_value()
    try:
        # A database user of the tenant first (surreal-store users add), then a root user.
        await db.signin(
            {
                "namespace": s.namespace,
                "database": s.database,
                "username": s.username,
                "password": password,
            },
            **on,
        )
    except surrealdb.SurrealError:
        await db.signin({"username": s.username, "password": password}, **on)
        return SignIn("root", s.username)
    role = None
    if _USER_NAME.match(s.username):
        info = await db.query_raw(f"INFO FOR USER {s.username} ON DATABASE;", None, **on)
        entries = info.get("result") if isinstance(info, dict) else None
        if entries and entries[0].get("status") == "OK":
            role = role_of(str(entries[0].get("result")))
    return SignIn("user", s.username, role)


def _drop_use(raw: Any) -> Any:
    """The answer of a query sent with a ``USE`` prefix, as if sent without it."""
    if not isinstance(raw, dict) or not isinstance(raw.get("result"), list):
        return raw
    entries = raw["result"]
    if entries and entries[0].get("status") != "OK":
        return {"result": entries[:1]}
    return {**raw, "result": entries[1:]}


async def _close_quietly(db: surrealdb.AsyncSurrealConnection, url: str) -> None:
    try:
        await db.close()
    except Exception as exc:  # closing must not mask what made us close
        log.warning("closing %s failed: %s", redact_url(url), exc)
    finally:
        _engine.answered()


# -- the embedded engine at interpreter exit --------------------------------------------------


class _EmbeddedEngine:
    """Lets the embedded engine's threads finish before the interpreter shuts down.

    Each answer of the engine reaches Python from one of its worker threads, which lets go of
    its Python objects a moment after the answer arrives. A script that ends right after its
    last call (``async with Store(...)``, then exit) can start shutting the interpreter down
    within that moment; the worker then finds no interpreter to attach to and the process
    aborts (SIGABRT, "panic in a function that cannot unwind"): about 1 run in 50 of a short
    script here. An exit hook, installed when the first embedded store opens, closes any
    store left open and waits until ``settle_s`` has passed since the engine's last answer
    (nothing, if the script did other work since): 0 aborts in 200 runs
    (``scripts/exit_status.py``).
    """

    settle_s = 0.05

    def __init__(self) -> None:
        self._last = 0.0
        self._open: weakref.WeakSet[Store] = weakref.WeakSet()
        self._installed = False

    def answered(self) -> None:
        self._last = time.monotonic()

    def opened(self, store: Store) -> None:
        self._open.add(store)
        if not self._installed:
            self._installed = True
            atexit.register(self.at_exit)

    def at_exit(self) -> None:
        for store in list(self._open):
            if store.state is StoreState.OPEN:
                store._close_at_exit()
        wait = self._last + self.settle_s - time.monotonic()
        if wait > 0:
            time.sleep(wait)


_engine = _EmbeddedEngine()


# -- results and errors ----------------------------------------------------------------------


def _results(raw: Any, sh: QueryShape) -> list[Any]:
    """Every statement's converted result; the root-cause failure raised as our error."""
    if not isinstance(raw, dict):
        raise e.TransportError(f"unexpected response from the engine: {type(raw).__name__}")
    err = raw.get("error")
    if err:
        if isinstance(err, dict):
            raise _error_for(err.get("kind"), str(err.get("message", err)), None, None, None)
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
        raise _error_for(entry.get("kind"), str(entry.get("result")), details, index + 1, text)
    return [_from_sdk(entry.get("result")) for entry in entries]


def _not_executed(entry: dict[str, Any]) -> bool:
    details = entry.get("details")
    if isinstance(details, dict) and details.get("kind") == "NotExecuted":
        return True
    message = str(entry.get("result", ""))
    return message.startswith(("The query was not executed", "Cannot COMMIT: the transaction"))


def _error_for(
    kind: Any, message: str, details: Any, statement: int | None, text: str | None
) -> e.StoreError:
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


def _map_exception(exc: BaseException, *, context: str) -> e.StoreError:
    """Translate an exception raised by the SDK or the engine binding."""
    if isinstance(exc, e.StoreError):
        return exc
    message = str(exc)
    if isinstance(exc, surrealdb.TransportError):
        if "already locked" in message:
            return e.StoreLockedError(
                f"{context}: the store is open in another process or connection ({message})"
            )
        if isinstance(exc, surrealdb.TransportTimeoutError):
            return e.QueryTimeoutError(f"{context}: {message}")
        return e.TransportError(f"{context}: {message}")
    if isinstance(exc, surrealdb.ServerError):
        kind = getattr(exc, "kind", None)
        return _error_for(kind, message, getattr(exc, "details", None), None, None)
    if isinstance(exc, surrealdb.UnsupportedEngineError | surrealdb.InvalidUrlError):
        return e.ConfigError(f"{context}: {message}")
    if isinstance(exc, TypeError | ValueError | surrealdb.SurrealError):
        # Raised while encoding parameters: nothing was sent.
        return e.ValidationError(f"{context}: cannot send a value: {message}")
    if isinstance(exc, OSError | ConnectionError):
        return e.TransportError(f"{context}: {message}")
    return e.TransportError(f"{context}: {type(exc).__name__}: {message}")


def _pick(results: list[Any], sh: QueryShape) -> list[Any]:
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


def _check_into(into: Any) -> None:
    # A type (int, a model) or a typing form (list[int], int | None); a string would be taken
    # for a forward reference. Checked before the query is sent.
    if not isinstance(into, type) and get_origin(into) is None:
        raise e.ValidationError(f"rows are read into a type, not {into!r}")


def _validate_rows(rows: list[Any], into: type[T]) -> list[T]:
    try:
        adapter: TypeAdapter[list[T]] = _adapter(cast(Hashable, into))
        result = adapter.validate_python(rows)
    except (TypeError, PydanticUserError) as exc:
        raise e.ValidationError(f"cannot read rows into {into!r}: {exc}") from None
    except PydanticValidationError as exc:
        name = getattr(into, "__name__", repr(into))
        raise e.ResultError(f"rows do not match {name}: {exc}") from None
    return result


# -- value conversion ------------------------------------------------------------------------


# Exact types that cross the boundary unchanged; checked with ``type(v) in`` (no call per value).
_PASS = frozenset(
    {str, int, float, bool, type(None), bytes, dt.datetime, surrealdb.PreciseDatetime}
)


def precise_datetime(text: str) -> dt.datetime:
    """An RFC 3339 UTC timestamp with up to nine fractional digits, as a datetime that keeps
    its nanoseconds when written (the SDK's own type; only this module imports the SDK)."""
    head, _, frac = text.rstrip("Z").partition(".")
    digits = (frac + "000000000")[:9]
    base = dt.datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(
        microsecond=int(digits[:6]), tzinfo=dt.UTC
    )
    return surrealdb.PreciseDatetime(
        base.year, base.month, base.day, base.hour, base.minute, base.second,
        base.microsecond, tzinfo=dt.UTC, nanosecond=int(digits[6:]),
    )  # fmt: skip


class _Unkept(Exception):
    """A value :func:`encode_row` does not keep."""


def _kept(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or kind is bytes:
        return value
    if value is None:
        return None
    if kind is dict:
        if any(type(k) is not str for k in value):
            raise _Unkept
        return {k: _kept(v) for k, v in value.items()}
    if kind is list:
        return [_kept(v) for v in value]
    if kind is RecordId:
        return cbor2.CBORTag(sdk_constants.TAG_RECORD_ID, [value.table, _kept(value.key)])
    if isinstance(value, dt.datetime) and value.utcoffset() == dt.timedelta(0):
        # As the engine sends it: [seconds, nanoseconds] (tag 12), which decodes to the same
        # PreciseDatetime, its nanoseconds included.
        delta = value - _EPOCH
        us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        seconds, rest = divmod(us, 1_000_000)
        nanos = rest * 1000 + int(getattr(value, "nanosecond", 0))
        return cbor2.CBORTag(sdk_constants.TAG_DATETIME_COMPACT, [seconds, nanos])
    raise _Unkept


def encode_row(row: Mapping[str, Any]) -> bytes | None:
    """``row``, as a read returns it, in CBOR that :func:`decode_row` turns back into an equal
    row: record ids, UTC datetimes to the nanosecond, JSON values. ``None`` when it holds a
    value of another kind (a duration, a geometry in some metadata), which is not kept."""
    try:
        return cbor2.dumps(_kept(row if type(row) is dict else dict(row)))
    except (_Unkept, ValueError, TypeError, OverflowError, RecursionError):
        return None


def _row_tag(first: Any, second: Any) -> Any:
    tag = first if isinstance(first, cbor2.CBORTag) else second
    if tag.tag == _TAG_DATETIME:
        return _datetime(*tag.value)
    if tag.tag == sdk_constants.TAG_RECORD_ID:
        table, key = tag.value
        return RecordId(table, _thaw(key))
    raise ValueError(f"CBOR tag {tag.tag} is not one encode_row writes")


def decode_row(data: bytes) -> Any:
    """The row :func:`encode_row` kept, as a read would return it."""
    return cbor2.loads(data, tag_hook=_row_tag)


_NUMBERS = frozenset({float, int})


def _to_sdk(value: Any) -> Any:
    if type(value) in _PASS or isinstance(value, _SCALARS):
        return value
    if isinstance(value, RecordId):
        return surrealdb.RecordID(value.table, _to_sdk(value.key))
    if value is JSON_NULL:
        return surrealdb.Null
    if isinstance(value, Mapping):
        for k in value:
            if type(k) is not str:
                # str(k) would store {1: 2} as {"1": 2}: refuse rather than coerce.
                raise e.ValidationError(f"object keys must be strings, not {k!r}")
        return {k: _to_sdk(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        # Vectors are long lists of scalars: test those inline rather than recursing.
        return [v if type(v) in _PASS else _to_sdk(v) for v in value]
    if isinstance(value, dt.timedelta):
        ns = (value.days * 86_400 + value.seconds) * 1_000_000_000 + value.microseconds * 1000
        return surrealdb.Duration(ns)
    if isinstance(value, BaseModel):
        return _to_sdk(value.model_dump(mode="python", exclude_none=True))
    if isinstance(value, set | frozenset):
        return [_to_sdk(v) for v in value]
    return value


def _from_sdk(value: Any) -> Any:
    kind = type(value)
    if kind in _PASS:
        return value
    # Rows are dicts and lists of mostly scalars: test those inline rather than recursing.
    if kind is dict:
        return {k: v if type(v) in _PASS else _from_sdk(v) for k, v in value.items()}
    if kind is list:
        # A vector (hundreds of floats) is checked by type in C and kept as it is: the
        # answer was decoded for this call alone, so nobody else holds the list.
        if set(map(type, value)) <= _NUMBERS:
            return value
        return [v if type(v) in _PASS else _from_sdk(v) for v in value]
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list):
        return [_from_sdk(v) for v in value]
    if isinstance(value, dict):
        return {k: _from_sdk(v) for k, v in value.items()}
    if isinstance(value, surrealdb.RecordID):
        return RecordId(value.table_name, _from_sdk(value.id))
    if isinstance(value, surrealdb.NullType):
        return None
    if isinstance(value, surrealdb.Duration):
        return dt.timedelta(microseconds=value.elapsed // 1000)
    if isinstance(value, surrealdb.Table):
        return str(value.table_name)
    return value
