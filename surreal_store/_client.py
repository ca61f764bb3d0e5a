"""The store: one connection to one namespace and database, typed queries, write
serialisation and retries.

What crosses to the SDK and back (values, answers, errors, the embedded connection, sign-in)
is the engine boundary's, :mod:`surreal_store._engine`, loaded when a store opens.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import EllipsisType, TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio

from . import _errors as e
from . import _retry
from ._engine._signin import ANONYMOUS, SignIn
from ._executor import SchemaAccess, ScratchStore
from ._surql import QueryShape, shape
from ._types import check_text

if TYPE_CHECKING:
    import asyncio

    from ._config import Settings
    from ._engine._embedded import Connection, Session, Shared

__all__ = ["SignIn", "Store", "StoreState", "StoreStats", "on_open"]

T = TypeVar("T")
log = logging.getLogger("surreal_store")

_OPENERS: list[Callable[[Store], Awaitable[None]]] = []


def on_open(opener: Callable[[Store], Awaitable[None]]) -> None:
    """Have ``opener(store)`` awaited by every store that opens with its schema checked, once
    the schema is checked or applied (the memory layer declares there the embedding space its
    settings name). A failure fails the open, as a failure of the schema does."""
    if opener not in _OPENERS:
        _OPENERS.append(opener)


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
        connection: Connection | None = None,
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
        from ._config import Settings  # pydantic-settings, when a store is made

        self._settings = (
            settings.replace(**overrides) if settings is not None else Settings.load(**overrides)
        )
        self._schema_dir = Path(schema_dir) if schema_dir is not None else None
        self._check_schema = check_schema
        self._db: Connection | None = connection
        self._owns_connection = connection is None
        self._state = StoreState.UNOPENED
        self._loop: asyncio.AbstractEventLoop | None = None
        self._write_lock = anyio.Lock(fast_acquire=True) if self._settings.is_embedded else None
        self._migrate_lock = anyio.Lock()
        self._shared: Shared | None = None
        self._session: Session | None = None  # this store's session on a shared connection
        self._signin = ANONYMOUS
        self._engine_version = ""
        # How parameters cross the boundary, chosen at open by the connection's kind.
        self._convert: Callable[[Any], Any] | None = None
        self._attached: dict[tuple[str, str, str], Any] = {}
        self.stats = StoreStats()

    def __repr__(self) -> str:
        from ._config import redact_url

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
        """The engine's version string, ``surrealdb-<version>`` (empty before open)."""
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
        import asyncio

        from ._config import redact_url
        from ._engine._answers import map_exception
        from ._engine._embedded import connection, params_converter
        from ._engine._exit import engine
        from ._engine._signin import sign_in
        from ._migrate import Migrator

        s = self._settings
        try:
            with anyio.fail_after(s.connect_timeout_s):
                if self._db is None and s.path is not None:
                    await self._open_shared()
                else:
                    if self._db is None:
                        self._db = connection(s.url)
                        await self._db.connect()
                    self._signin = await sign_in(self._db, s)
                    await self._db.use(s.namespace, s.database)
                assert self._db is not None
                self._engine_version = str(await self._db.version())
                self._convert = params_converter(self._db)
        except TimeoutError:
            await self._leave_session()
            await self._close_connection()
            raise e.QueryTimeoutError(
                f"could not connect to {redact_url(s.url)} within {s.connect_timeout_s}s"
            ) from None
        except Exception as exc:
            await self._leave_session()
            await self._close_connection()
            raise map_exception(exc, context=f"opening {redact_url(s.url)}") from exc
        self._state = StoreState.OPEN
        self._loop = asyncio.get_running_loop()
        if self._shared is not None:
            tenant = (s.namespace, s.database)
            self._shared.tenants[tenant] = self._shared.tenants.get(tenant, 0) + 1
        if s.is_embedded:
            engine.opened(self._close_at_exit)
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
            for opener in _OPENERS:
                await opener(self)
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
        """Connect to embedded files, or share this process's connection to them, in an
        engine session of this store's identity (:class:`~._engine._embedded.Shared`)."""
        from ._engine._embedded import Shared

        self._shared = shared = Shared.of(self._settings)
        self._session = session = await shared.enter(self._settings)
        self._db, self._signin = shared.db, session.signin
        self._write_lock = shared.write_lock

    async def _leave_session(self) -> None:
        """Let go of this store's session on a shared connection."""
        session, self._session = self._session, None
        if session is not None and self._shared is not None:
            await self._shared.leave(session)

    def _release(self) -> Connection | None:
        """Let go of the connection; return it if this store must close it: it opened it and,
        when stores share it, is the last of them."""
        db, self._db = self._db, None
        shared, self._shared = self._shared, None
        if shared is None:
            return db if self._owns_connection else None
        return shared.release()

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
            from ._engine._embedded import close_quietly

            await close_quietly(db, self._settings.url)

    def _close_at_exit(self) -> None:
        """Close a connection its owner left open, from the interpreter's exit hook."""
        if self._state is not StoreState.OPEN:
            return
        import asyncio

        from ._engine._exit import engine

        self._state = StoreState.CLOSED
        db = self._release()
        if db is not None:
            with contextlib.suppress(Exception):
                asyncio.run(db.close())
            engine.answered()

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
        from ._engine._answers import check_into, pick, validate_rows

        check_into(into)
        results, sh = await self._run(text, params, idempotent=idempotent)
        return validate_rows(pick(results, sh), into)

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
        from ._engine._answers import check_into, pick, validate_rows

        check_into(into)
        results, sh = await self._run(text, params, idempotent=True, serialise=False)
        return validate_rows(pick(results, sh), into)

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
        convert = self._convert
        if convert is None:
            raise e.StoreStateError("the store is not open")
        try:
            sdk_params = {k: convert(v) for k, v in params.items()} if params else None
        except RecursionError:
            raise e.ValidationError("cannot send a value: it is nested too deep") from None
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

    async def _send(self, text: str, params: dict[str, Any] | None, read_only: bool) -> Any:
        """One call to the engine on the connection as it is now (a checkpoint may have reopened
        it meanwhile), in flight (what a checkpoint waits for) only while it runs."""
        shared = self._shared
        if shared is None:
            from ._engine._embedded import query_raw

            assert self._db is not None
            return await query_raw(self._db, text, params)
        self._db = shared.db
        session = self._session
        if session is None:
            raise e.StoreStateError("the store is closed")
        return await shared.send(session, text, params, read_only=read_only)

    def write_mark(self) -> int | None:
        """A count that moves whenever a query that may change data goes out on this store's
        connection (from any store sharing it): equal marks mean no change in between. ``None``
        when that cannot be told: a connection others may write through (a server's, a lent
        one), or a write in flight. For the recall index, not for applications."""
        if self._shared is None or self._state is not StoreState.OPEN:
            return None
        return self._shared.write_mark()

    async def _attempt(
        self,
        text: str,
        params: dict[str, Any] | None,
        sh: QueryShape,
        serialise: bool,
        timeout_s: float | EllipsisType | None = ...,
    ) -> list[Any]:
        import asyncio

        from ._engine._answers import drop_use, map_exception, results
        from ._engine._exit import engine

        shared = self._shared
        if shared is not None:
            try:
                await shared.ready(self._settings, writes=not sh.read_only)
            except Exception as exc:
                raise map_exception(exc, context="reopening the store") from exc
        if (self._db if shared is None else shared.db) is None:
            raise e.StoreStateError("the store is closed")
        self.stats.queries += 1
        timeout = self._settings.query_timeout_s if timeout_s is ... else timeout_s
        try:
            # asyncio's own timeout, not anyio.fail_after: the SDK runs only on asyncio, and
            # anyio's cancel scope costs more per query (docs/design.md, "Engine notes").
            use = self._session.use if self._session is not None else None
            if use is not None:
                text = use + text
            async with asyncio.timeout(timeout):
                if self._write_lock is not None and serialise and not sh.read_only:
                    async with self._write_lock:
                        raw = await self._send(text, params, sh.read_only)
                else:
                    raw = await self._send(text, params, sh.read_only)
            engine.answered()
            if use is not None:
                raw = drop_use(raw)
        except TimeoutError:
            raise e.QueryTimeoutError(f"query did not finish within {timeout}s") from None
        except Exception as exc:
            err = map_exception(exc, context="query")
            self._count(err)
            raise err from exc
        try:
            return results(raw, sh)
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
