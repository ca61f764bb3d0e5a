"""The embedded engine's connection: the SDK's class with our decoder and engine sessions,
the process-wide table of connections shared by the stores of one set of files, and the
reopen that writes the engine's memory table out before its write-ahead log fills.

An embedded store's files admit one connection per process, so the stores of a process on the
same files share it (:class:`Shared`, found in :data:`_SHARED` by the files' path) and its
write lock. Each store queries through an engine session of its own identity
(:func:`~._signin.identity`): stores of the same identity share a session; a new identity gets
a new session, signed in by the engine, so that a sign-in is never assumed from another one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import anyio
import cbor2

from .. import _errors as e
from .._config import Settings, redact_url, url_scheme
from . import _sdk as sdk
from ._codec import decode, encode_query, to_sdk, to_wire
from ._exit import engine
from ._sdk import (
    AsyncEmbeddedSurrealConnection,
    AsyncWsSurrealConnection,
    RequestMessage,
    RequestMethod,
    Url,
    UrlScheme,
    mapped_engine_errors,
)
from ._signin import ANONYMOUS, SignIn, identity, sign_in

__all__ = [
    "Connection",
    "EmbeddedConnection",
    "Session",
    "Shared",
    "close_quietly",
    "connection",
    "params_converter",
    "query_raw",
]

if TYPE_CHECKING:
    Connection: TypeAlias = sdk.AsyncSurrealConnection
    """An SDK connection, embedded or to a server (what ``Store(connection=...)`` wraps)."""
else:
    # For annotations: reading the SDK's own alias would load its HTTP clients (._sdk).
    Connection = AsyncEmbeddedSurrealConnection | AsyncWsSurrealConnection

log = logging.getLogger("surreal_store")

# The write-ahead log's size past which an embedded surrealkv connection is reopened
# (:meth:`Shared.checkpoint`): well under the size at which the engine stops answering writes.
_WAL_LIMIT: Final = 1 << 30

_EMBEDDED_SCHEMES = frozenset(
    {
        UrlScheme.MEM,
        UrlScheme.MEMORY,
        UrlScheme.FILE,
        UrlScheme.SURREALKV,
        UrlScheme.SURREALKV_VERSIONED,
    }
)


_request_ids = itertools.count(1)


async def embedded_query_raw(
    db: AsyncEmbeddedSurrealConnection,
    query: str,
    vars: dict[str, Any] | None = None,
    session_id: uuid.UUID | None = None,
    txn_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """The SDK's ``query_raw`` on an embedded connection (the raw answer, errors not raised),
    encoded by :func:`~._codec.encode_query` (``vars`` as :func:`~._codec.to_wire` makes
    them) and decoded by :func:`~._codec.decode`: cbor2's C codec, where the SDK's is pure
    Python. Any embedded connection, ours or the SDK's own (one lent to a store)."""
    extra = {} if session_id is None else {"session": str(session_id)}
    if txn_id is not None:
        extra["txn"] = str(txn_id)
    try:
        request = encode_query(str(next(_request_ids)), query, vars or {}, **extra)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise e.ValidationError(f"query: cannot send a value: {exc}") from None
    # From here the statements may have run: a failure to answer is not one to retry, nor
    # one that sent nothing.
    try:
        with mapped_engine_errors("query"):
            raw = await db._db.execute(request)
        response = decode(raw)
    except (TypeError, ValueError, cbor2.CBORError) as exc:
        raise e.ResultError(
            f"query: the engine's answer cannot be read ({type(exc).__name__}: {exc}); "
            "its statements may have run"
        ) from exc
    return response if isinstance(response, dict) else {}


async def query_raw(db: Connection, query: str, vars: dict[str, Any] | None) -> dict[str, Any]:
    """``db.query_raw(query, vars)``, through our codec on any embedded connection
    (``vars`` as :func:`params_converter` makes them for ``db``)."""
    if isinstance(db, AsyncEmbeddedSurrealConnection):
        return await embedded_query_raw(db, query, vars)
    return await db.query_raw(query, vars)


class EmbeddedConnection(AsyncEmbeddedSurrealConnection):
    """The SDK's embedded connection, encoding and decoding with cbor2's C codec
    (:func:`embedded_query_raw`), where the SDK's codec is pure Python, and with the engine's
    sessions."""

    async def query_raw(
        self,
        query: str,
        vars: dict[str, Any] | None = None,
        session_id: uuid.UUID | None = None,
        txn_id: uuid.UUID | None = None,
    ) -> dict[str, Any]:
        """:func:`embedded_query_raw` on this connection."""
        return await embedded_query_raw(self, query, vars, session_id, txn_id)

    async def _send(self, message: Any, process: str, bypass: bool = False) -> dict[str, Any]:
        with mapped_engine_errors(process):
            raw = await self._db.execute(message.WS_CBOR_DESCRIPTOR)
        response = decode(raw)
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


def params_converter(db: sdk.AsyncSurrealConnection) -> Callable[[Any], Any]:
    """How a query's parameters go to ``db`` (by :func:`query_raw`): made for our encoder
    (:func:`~._codec.to_wire`) on an embedded connection, as the SDK's types to a server."""
    return to_wire if isinstance(db, AsyncEmbeddedSurrealConnection) else to_sdk


def connection(url: str) -> sdk.AsyncSurrealConnection:
    """A new, unconnected connection to ``url``: embedded (our class) or a server's."""
    # Built once: an embedded connection object holds its files from construction.
    if Url(url).scheme in _EMBEDDED_SCHEMES:
        return EmbeddedConnection(url=url)
    return sdk.AsyncSurreal(url)


async def close_quietly(db: sdk.AsyncSurrealConnection, url: str) -> None:
    """Close ``db``, logging rather than raising a failure to close."""
    try:
        await db.close()
    except Exception as exc:  # closing must not mask what made us close
        log.warning("closing %s failed: %s", redact_url(url), exc)
    finally:
        engine.answered()


_API_CALL = re.compile(r"\bapi::", re.IGNORECASE)


@functools.lru_cache(maxsize=2048)
def may_write(text: str, read_only: bool) -> bool:
    """Whether ``text``, whose shape is ``read_only`` or not, may change data: a read-only
    shape admits no write word and no custom function, but an API's handler (``api::invoke``)
    may write too."""
    return not read_only or _API_CALL.search(text) is not None


class Session:
    """One engine session on a shared embedded connection: one identity, signed in by the
    engine, with its namespace and database selected.

    A session that signs in is one the engine attached for it (``id``). The anonymous ones
    (no credentials: full access, as whoever opens the files has) are the connection's own
    session, the only one the engine opens with full access: the first selects its database
    on it, the others name theirs in each query (``use``, a ``USE`` in the same request)."""

    def __init__(self, key: tuple[str, ...], settings: Settings) -> None:
        self.key = key
        anonymous = settings.agent is None and settings.username is None
        self.id: uuid.UUID | None = None if anonymous else uuid.uuid4()
        self.settings = settings  # to sign in again when the connection is reopened
        self.signin: SignIn = ANONYMOUS
        self.use: str | None = None
        self.users = 0


class Shared:
    """One process's connection to one set of embedded files, shared by its stores."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.db: EmbeddedConnection | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sessions: dict[tuple[str, ...], Session] = {}
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
        # What :meth:`write_mark` counts: calls that may change data sent on the connection,
        # those of them not answered yet, and whether one ended without its answer (the
        # engine may still be running it, so that no mark can be trusted again).
        self.writes_sent = 0
        self.writes_open = 0
        self.untracked = False

    @classmethod
    def of(cls, s: Settings) -> Shared:
        """The connection to the files of ``s`` this process shares (made now if none), with
        one more user counted."""
        assert s.path is not None
        key = str(s.path.expanduser().resolve())
        shared = _SHARED.get(key)
        if shared is None:
            shared = _SHARED[key] = cls(key)
        shared.users += 1
        return shared

    async def enter(self, s: Settings) -> Session:
        """Connect (if no store of this process has), and join or start the engine session of
        the identity of ``s``."""
        async with self.open_lock:
            if self.db is None:
                db = EmbeddedConnection(url=s.url)
                try:
                    await db.connect()
                except BaseException:
                    await close_quietly(db, s.url)
                    raise
                self.db = db
                self.loop = asyncio.get_running_loop()
                if url_scheme(s.url).startswith("surrealkv"):
                    self.wal = Path(self.key) / "wal"
            if self.loop is not asyncio.get_running_loop():
                raise e.StoreLockedError(
                    f"{redact_url(s.url)} is open in this process on another event loop; "
                    "stores sharing embedded files share a loop"
                )
            who = identity(s)
            session = self.sessions.get(who)
            if session is None:
                session = Session(who, s)
                self.writes_sent += 1  # a sign-in may run the access method's queries
                await self._start(self.db, session)
                self.sessions[who] = session
            session.users += 1
            return session

    async def _start(self, db: EmbeddedConnection, session: Session) -> None:
        """Start ``session`` on ``db``: the engine checks its sign-in, then it selects its
        namespace and database. Nothing of it is left behind if any step fails."""
        s = session.settings
        where = (s.namespace, s.database)
        try:
            if session.id is None:
                if self.home is None:
                    await db.use(*where)
                    self.home = where
                if where != self.home:
                    session.use = f"USE NS {s.namespace} DB {s.database};\n"
                return
            await db.attach_session(session.id)
            try:
                session.signin = await sign_in(db, s, session=session.id)
                await db.use(*where, session_id=session.id)
            except BaseException:
                with contextlib.suppress(Exception):
                    await db.detach_session(session.id)
                raise
        finally:
            engine.answered()

    async def leave(self, session: Session) -> None:
        """Let go of a store's session; the last store of a session ends it in the engine,
        unless the connection closes anyway."""
        session.users -= 1
        if session.users > 0:
            return
        if self.sessions.get(session.key) is session:
            del self.sessions[session.key]
        db = self.db
        if db is not None and self.users > 1 and session.id is not None:
            try:
                await db.detach_session(session.id)
            except Exception as exc:  # the session dies with the connection anyway
                log.debug("ending an engine session failed: %s", exc)
            finally:
                engine.answered()

    def release(self) -> EmbeddedConnection | None:
        """One user fewer; the connection, for the caller to close, once none is left."""
        self.users -= 1
        if self.users > 0:
            return None
        _SHARED.pop(self.key, None)
        db, self.db = self.db, None
        return db

    async def send(
        self,
        session: Session,
        text: str,
        params: dict[str, Any] | None,
        *,
        read_only: bool = False,
    ) -> Any:
        """One call to the engine in ``session``, on the connection as it is now (a
        checkpoint may have reopened it while the call waited for the write lock). Counted as
        in flight, which a checkpoint waits for, only while it runs; ``read_only``: its shape
        admits no write (:meth:`write_mark` counts the others)."""
        db = self.db
        if db is None:
            raise e.StoreStateError("the store is closed")
        writes = may_write(text, read_only)
        self.busy += 1
        if writes:
            self.writes_sent += 1
            self.writes_open += 1
        answered = False
        try:
            raw = await db.query_raw(text, params, session_id=session.id)
            answered = True
            return raw
        finally:
            self.busy -= 1
            if self.busy == 0 and self.drained is not None:
                self.drained.set()
            if writes:
                self.writes_open -= 1
                if not answered:
                    self.untracked = True

    def write_mark(self) -> int | None:
        """A count that moves whenever a call that may change data is sent on this
        connection: the same mark at two moments means that the database has not changed
        in between, since no other connection can reach embedded files this process holds.
        ``None`` when that cannot be told: such a call is in flight, or one ended without
        its answer (the engine may still be running it)."""
        if self.writes_open or self.untracked:
            return None
        return self.writes_sent

    async def ready(self, s: Settings, *, writes: bool) -> None:
        """Wait until the connection may take a call: past a reopen in progress, and, before
        a write, after a reopen if the log has grown past :data:`_WAL_LIMIT` (so that a
        failure to reopen fails a write never sent)."""
        if writes and self.wal_bytes() > _WAL_LIMIT:
            await self.checkpoint(s)
        while self.reopened is not None:
            await self.reopened.wait()

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

        The embedded engine on surrealkv keeps every write in memory and in its log until the
        connection closes, and stops answering writes for good once the log reaches its third
        1 GB segment (docs/design.md, "Engine notes"). Closing writes it out (and empties the
        log); reopening continues from there. Writes wait for this (they hold the write lock),
        reads in flight finish first and new ones wait."""
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
                await close_quietly(old, s.url)
                db = EmbeddedConnection(url=s.url)
                try:
                    await db.connect()
                    # Every session again, under its own id: the stores keep theirs.
                    if self.home is not None:
                        await db.use(*self.home)
                    for session in list(self.sessions.values()):
                        if session.id is not None:
                            await self._start(db, session)
                except BaseException:
                    await close_quietly(db, s.url)
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


_SHARED: dict[str, Shared] = {}
