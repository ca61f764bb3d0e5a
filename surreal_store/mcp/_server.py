"""The MCP memory server: the memory layer and provenance as Model Context Protocol tools."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final, Literal, TypeVar

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from .. import access, commits, memory, provenance
from .._client import Store
from .._config import redact_url
from .._doors import AGENT_MAX_K, DoorSpace, fits, own_embedder
from .._errors import (
    ConfigError,
    EmbeddingSpaceError,
    NotFoundError,
    StoreError,
    StoreLockedError,
    ValidationError,
)
from .._version import __version__
from ._graph_tools import register_graph_tools
from ._stdio import refuse_first_request, serve_stdio
from ._subscriptions import ListenerBus, Subscriptions

__all__ = ["EmbedderChoice", "create_server", "resolve_embedder", "serve"]
T = TypeVar("T")
log = logging.getLogger("surreal_store.mcp")

EmbedderChoice = Literal["auto", "none", "hashing"] | str
"""``"auto"`` (the store's own, as the CLI's recall finds it: the built-in hashing embedder when
the space is its, a sentence-transformers model when the space names one and the ``local``
extra is installed),
``"none"`` (full text only), ``"hashing"`` / ``"hashing:DIM"`` (the built-in one), or
``"sentence-transformers:NAME"``."""

_INSTRUCTIONS: Final = """\
A provenance-first memory store. remember stores a memory (same content in one scope: one id);
recall finds memories (vector, hybrid or full text; filters on scope, kind, tags, metadata,
time). Every result carries ids the other tools take: get_memory, lineage (where a memory came
from), impact (what depends on it), invalidate / restore (hide what you no longer trust, and
everything derived from it), forget (delete for good), record_decision (with the memory ids it
used), record_outcome, why (what a decision used, and where that came from), log (the commit
history of the agent's state)."""

_READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True)
_WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True)
_APPEND = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False)
_DESTROY = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True)

MemoryId = Annotated[str, Field(description="A memory id (64 hex characters), from any result.")]
DecisionId = Annotated[str, Field(description="A decision id, from record_decision or why.")]


def resolve_embedder(
    choice: EmbedderChoice, space: memory.EmbeddingSpace | None
) -> memory.Embedder | None:
    """The embedder ``choice`` names for a store whose space is ``space``."""
    if choice == "none":
        return None
    if choice == "auto":

        def missing(reason: str) -> None:
            assert space is not None
            log.warning(
                "surreal-store mcp: no embedder for the store's model %s (%s): full-text recall "
                "only",
                space.writing_model,
                reason,
            )

        return own_embedder(space, missing=missing)
    if choice == "hashing" or choice.startswith("hashing:"):
        _, _, dim = choice.partition(":")
        if dim and not dim.isdigit():
            raise ValidationError(f"hashing:DIM takes a number, not {dim!r}")
        return memory.HashingEmbedder(int(dim) if dim else 256)
    if choice.startswith("sentence-transformers:"):
        name = choice.partition(":")[2]
        try:
            return memory.SentenceTransformerEmbedder(name)
        except ImportError:
            raise ConfigError(
                f"--embedder {choice} needs the local extra: pip install 'surreal-store[local]'"
            ) from None
        except Exception as exc:  # the model not found, not loadable
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ConfigError(f"--embedder {choice}: the model did not load: {reason}") from None
    raise ValidationError(
        f"unknown embedder {choice!r}: auto, none, hashing[:DIM] or sentence-transformers:NAME"
    )


class _Session:
    """What the server's tools share: the store and its embedder."""

    def __init__(self, store: Store, embedder: memory.Embedder | None) -> None:
        self.store = store
        self.embedder = embedder
        self.space = DoorSpace(embedder.model if embedder is not None else None)

    async def scope(self, given: str | None, tool: str) -> str:
        """The scope a tool call means: the one given; for an agent's server without one, its
        one granted scope (several or none: a refusal naming those it may use); otherwise
        ``default``."""
        if given is not None:
            return given
        if self.store.signed_in_as.kind != "agent":
            return memory.DEFAULT_SCOPE
        scopes = await access.granted_scopes(self.store)
        if len(scopes) == 1:
            return scopes[0]
        if not scopes:
            raise ToolError(f"{tool} needs a scope, and this agent is granted none")
        names = ", ".join(repr(s) for s in scopes)
        raise ToolError(f"{tool} needs a scope: this agent may use {names}")

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        # The store's refusals reach the client as a tool error with the store's message.
        try:
            return await fn()
        except StoreError as exc:
            raise ToolError(f"{type(exc).__name__}: {exc}") from exc

    async def read(self, fn: Callable[[], Awaitable[T]]) -> T:
        """A resource's answer. The store's refusals reach the client as MCP errors with the
        store's message, and stay out of the server's log as tracebacks (they are the client's
        news): an id that is malformed, unknown, or of a record this sign-in may not see is
        "not found" (-32602), each in the same words; any other refusal is the resource
        failing (-32603)."""
        try:
            return await fn()
        except (NotFoundError, ValidationError) as exc:
            raise ResourceNotFoundError(f"{type(exc).__name__}: {exc}") from None
        except StoreError as exc:
            raise ResourceError(f"{type(exc).__name__}: {exc}") from None
        except ToolError as exc:  # the session's own refusal (an agent's scope)
            raise ResourceError(str(exc)) from None


def _memory_out(m: memory.Memory) -> dict[str, Any]:
    return m.model_dump(mode="json", exclude={"embedding"})


def _hit_out(h: memory.RecallHit) -> dict[str, Any]:
    return {
        "id": h.memory.id,
        "score": h.score,
        "vector_score": h.vector_score,
        "text_score": h.text_score,
        "content": h.memory.content,
        "scope": h.memory.scope,
        "kind": h.memory.kind,
        "key": h.memory.key,
        "tags": h.memory.tags,
        "metadata": h.memory.metadata,
        "created_at": h.memory.created_at.isoformat(),
        "invalidated": h.memory.invalidated,
    }


def create_server(store: Store, *, embedder: memory.Embedder | None = None) -> MCPServer[Any]:
    """An MCP server on ``store`` (open; the server closes nothing). ``embedder`` embeds what
    is remembered and recalled (it must match the store's space); without one, recall is full
    text only, and the server says so. :func:`serve` opens a store and runs a server on it."""
    if not isinstance(store, Store):
        raise ValidationError("create_server needs an open surreal_store.Store")
    if embedder is not None and not isinstance(embedder, memory.Embedder):
        raise ValidationError("embedder must be a surreal_store.memory.Embedder")
    session = _Session(store, embedder)
    instructions = _INSTRUCTIONS + (
        "" if embedder is not None else "\nThis server has no embedder: recall is full text only."
    )
    bus = ListenerBus()
    server: MCPServer[Any] = MCPServer(
        "surreal-store",
        subscriptions=bus,
        title="surreal-store memory",
        instructions=instructions,
        version=__version__,
        # Refused calls are the client's answer, not the operator's news: warnings and up.
        log_level="WARNING",
    )

    async def embedder_for_writes() -> memory.Embedder | None:
        e = session.embedder
        if e is not None and not await session.space.known_dimension(session.store):
            await session.space.declare(session.store, e.dimension)
        return e

    @server.tool(annotations=_WRITE)
    async def remember(
        content: Annotated[str, Field(description="The memory's text.")],
        scope: Annotated[
            str | None,
            Field(
                description="Whose or what memory this is (default: 'default'; for an agent, "
                "its granted scope when it has one)."
            ),
        ] = None,
        key: Annotated[str | None, Field(description="A name for the fact it states.")] = None,
        kind: Annotated[str, Field(description="note, fact, preference, summary...")] = "note",
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        derived_from: Annotated[
            list[MemoryId] | None,
            Field(description="Ids of the memories this one was made from."),
        ] = None,
        how: Annotated[str, Field(description="How it was derived from them.")] = "derived",
        said_by: Annotated[
            str | None, Field(description="The person who said it, as its source.")
        ] = None,
    ) -> dict[str, Any]:
        """Store a memory and return it (with its id). The same content in the same scope is
        the same memory: remembering it again returns the existing one."""

        async def go() -> dict[str, Any]:
            sources: list[Any] = [
                provenance.MemoryDerivation(parent=p, how=how) for p in derived_from or []
            ]
            if said_by is not None:
                sources.append(provenance.UserAnnotation(user=said_by))
            m = await memory.remember(
                session.store, content=content, scope=await session.scope(scope, "remember"),
                key=key, kind=kind, tags=tags or [], metadata=metadata,
                embedder=await embedder_for_writes(), provenance=sources,
            )  # fmt: skip
            return _memory_out(m)

        return await session.call(go)

    @server.tool(annotations=_READ)
    async def recall(
        query: Annotated[str, Field(description="What to look for.")],
        k: Annotated[
            int, Field(ge=1, le=AGENT_MAX_K, strict=True, description="How many memories.")
        ] = 5,
        mode: Annotated[
            Literal["auto", "vector", "hybrid", "fulltext"],
            Field(description="auto: hybrid with an embedder, full text without."),
        ] = "auto",
        scope: str | None = None,
        kind: str | None = None,
        tags: Annotated[list[str] | None, Field(description="Memories with all of them.")] = None,
        metadata: Annotated[
            dict[str, Any] | None,
            Field(description='{"path.to": value} or {"path": {"$gte": 3}}: exact filters.'),
        ] = None,
        created_after: dt.datetime | None = None,
        created_before: dt.datetime | None = None,
        include_invalidated: bool = False,
    ) -> dict[str, Any]:
        """The memories most relevant to ``query``, best first, with their ids and scores."""

        async def go() -> dict[str, Any]:
            e = session.embedder
            used = mode if mode != "auto" else ("hybrid" if e is not None else "fulltext")
            if used != "fulltext" and e is None:
                raise ToolError(
                    f"{used} recall needs an embedder, and this server has none: use "
                    "mode='fulltext' (or start the server with --embedder)"
                )
            note = (
                None if e is not None else "this server has no embedder: recall is full text only"
            )
            if used != "fulltext" and await memory.get_space(session.store) is None:
                used, note = "fulltext", "nothing is embedded yet: recall is full text"
            hits = await memory.recall(
                session.store, text=query, embedder=e if used != "fulltext" else None, k=k,
                mode=used, scope=scope, kind=kind, tags=tags, metadata=metadata,
                created_after=created_after, created_before=created_before,
                include_invalidated=include_invalidated,
            )  # fmt: skip
            out: dict[str, Any] = {"mode": used, "hits": [_hit_out(h) for h in hits]}
            if note is not None:
                out["note"] = note
            return out

        return await session.call(go)

    @server.tool(annotations=_READ)
    async def get_memory(memory_id: MemoryId) -> dict[str, Any]:
        """One memory by id, hidden or not (``invalidated_*`` say why it is hidden)."""
        return await session.call(lambda: _get(session, memory_id))

    @server.tool(annotations=_WRITE)
    async def invalidate(
        memory_id: MemoryId,
        reason: Annotated[str, Field(description="Why it is no longer trusted.")],
        cascade: Annotated[
            bool, Field(description="Hide what was derived from it too (default).")
        ] = True,
        by: str | None = None,
    ) -> dict[str, Any]:
        """Hide a memory from recall (and, with ``cascade``, every memory derived from it);
        reversible with restore. Returns the ids hidden."""

        async def go() -> dict[str, Any]:
            if cascade:
                r = await provenance.invalidate(
                    session.store, memory=memory_id, reason=reason, by=by
                )
                return {"cause": r.cause, "hidden": r.memories}
            m = await memory.invalidate(session.store, memory=memory_id, reason=reason, by=by)
            return {"cause": f"memory:{m.id}", "hidden": [m.id]}

        return await session.call(go)

    @server.tool(annotations=_WRITE)
    async def restore(memory_id: MemoryId) -> dict[str, Any]:
        """Undo invalidate: returns the ids that became visible again (those another cause
        still hides stay hidden)."""

        async def go() -> dict[str, Any]:
            return {"restored": await provenance.restore(session.store, memory=memory_id)}

        return await session.call(go)

    @server.tool(annotations=_DESTROY)
    async def forget(
        memory_id: Annotated[str | None, Field(description="The memory to delete.")] = None,
        key: Annotated[
            str | None, Field(description="Or every memory with this key in scope.")
        ] = None,
        scope: Annotated[
            str | None,
            Field(description="The key's scope (default as for remember)."),
        ] = None,
        reason: str = "forgotten",
    ) -> dict[str, Any]:
        """Delete memories for good (give ``memory_id``, or ``key`` with its ``scope``), with
        the provenance edges touching them. Returns the receipt: what was removed."""

        async def go() -> dict[str, Any]:
            if (memory_id is None) == (key is None):
                raise ToolError("give memory_id or key, not both and not neither")
            if memory_id is not None:
                r = await memory.forget(session.store, memory=memory_id, reason=reason)
            else:
                r = await memory.forget(
                    session.store,
                    key=key,
                    scope=await session.scope(scope, "forget"),
                    reason=reason,
                )
            return r.model_dump(mode="json")

        return await session.call(go)

    @server.tool(annotations=_APPEND)
    async def record_decision(
        task: Annotated[str, Field(description="What the agent was doing.")],
        action: Annotated[str, Field(description="What it chose to do.")],
        confidence: Annotated[float, Field(ge=0, le=1)],
        rationale: str = "",
        alternatives: list[str] | None = None,
        used: Annotated[
            list[MemoryId] | None, Field(description="Ids of the memories it relied on.")
        ] = None,
    ) -> dict[str, Any]:
        """Record a decision and the memories it used; returns it with its id (for why and
        record_outcome)."""

        async def go() -> dict[str, Any]:
            d = await provenance.record_decision(
                session.store, task=task, action=action, confidence=confidence,
                rationale=rationale, alternatives=alternatives or [], used=used or [],
            )  # fmt: skip
            return d.model_dump(mode="json")

        return await session.call(go)

    @server.tool(annotations=_WRITE)
    async def record_outcome(
        decision_id: DecisionId,
        success: bool,
        outcome: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record how a decision turned out."""

        async def go() -> dict[str, Any]:
            d = await provenance.record_outcome(
                session.store, decision=decision_id, outcome=outcome or {}, success=success
            )
            return d.model_dump(mode="json")

        return await session.call(go)

    @server.tool(annotations=_READ)
    async def lineage(
        memory_id: MemoryId,
        max_depth: Annotated[int | None, Field(ge=1, strict=True)] = None,
    ) -> dict[str, Any]:
        """Where a memory came from: the graph of its sources (runs, snapshots, people, the
        memories it was derived from), as nodes and edges."""

        async def go() -> dict[str, Any]:
            g = await provenance.lineage(session.store, memory=memory_id, max_depth=max_depth)
            return g.to_dict()

        return await session.call(go)

    @server.tool(annotations=_READ)
    async def impact(memory_id: MemoryId) -> dict[str, Any]:
        """What depends on a memory: the memories derived from it (itself included) and the
        decisions that used any of them."""

        async def go() -> dict[str, Any]:
            return (await provenance.impact(session.store, memory=memory_id)).model_dump()

        return await session.call(go)

    @server.tool(annotations=_READ)
    async def why(decision_id: DecisionId) -> dict[str, Any]:
        """Why a decision was taken: the memories it used and where they came from."""

        async def go() -> dict[str, Any]:
            return (await provenance.why(session.store, decision=decision_id)).to_dict()

        return await session.call(go)

    @server.tool(annotations=_READ)
    async def log(
        branch: Annotated[
            str | None, Field(description="Default: the default branch (main).")
        ] = None,
        commit: str | None = None,
        limit: Annotated[int, Field(ge=1, le=1000, strict=True)] = 20,
    ) -> dict[str, Any]:
        """The commit history of the agent's state, newest first."""

        async def go() -> dict[str, Any]:
            if commit is None:
                # No branch: the default one; before the first commit, an empty history.
                history = await commits.log(session.store, branch=branch, limit=limit)
            else:
                if branch is not None:
                    raise ToolError("give branch or commit, not both")
                history = await commits.log(session.store, commit=commit, limit=limit)
            return {"commits": [c.model_dump(mode="json") for c in history]}

        return await session.call(go)

    @server.resource("memory://{memory_id}", mime_type="application/json")
    async def memory_resource(memory_id: str) -> dict[str, Any]:
        """A memory by id."""
        return await session.read(lambda: _get(session, memory_id))

    @server.resource("decision://{decision_id}", mime_type="application/json")
    async def decision_resource(decision_id: str) -> dict[str, Any]:
        """A decision by id."""

        async def go() -> dict[str, Any]:
            d = await provenance.get_decision(session.store, decision=decision_id)
            return d.model_dump(mode="json")

        return await session.read(go)

    # Subscribing to a resource (memory://knowledge-graph, memory://{id}): told when it
    # changes, whoever writes (_subscriptions).
    Subscriptions(session, register_graph_tools(server, session), bus).install(server)
    return server


async def serve(
    url: str | None = None,
    *,
    transport: Literal["stdio", "http"] = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    embedder: EmbedderChoice = "auto",
    **settings: Any,
) -> None:
    """Open the store at ``url`` (the settings' default when ``None``; ``settings`` as
    :class:`~surreal_store.Store` takes them) once, migrated, serve it over ``transport``
    (stdio, or streamable HTTP at ``http://host:port/mcp``) until the client or a signal ends
    it, and close the store.

    Before serving, the embedder is checked against the store's space: one that does not
    match, or that cannot load, is refused (:class:`EmbeddingSpaceError`,
    :class:`ConfigError`) and nothing is served. On a store with no space yet, the embedder's
    becomes the store's. While serving, memories stored without a vector (written while no
    embedder was configured) are embedded in the background."""
    if transport not in ("stdio", "http"):
        raise ValidationError(f"transport must be stdio or http, not {transport!r}")
    # An embedder named outright is made (or refused) before the store is opened: a server
    # that refuses to start creates nothing, not even a store at a mistyped path.
    named = resolve_embedder(embedder, None) if embedder != "auto" else None
    _plain_notices()
    store = Store(url, migrate=True, **settings)
    try:
        await store.open()
    except StoreLockedError as exc:
        locked = _locked(store.settings.url, transport, host, port)
        if transport == "stdio":
            await refuse_first_request(str(locked))
        raise locked from exc
    try:
        chosen = await _start_embedder(store, embedder, named)
        server = create_server(store, embedder=chosen)
        async with anyio.create_task_group() as tasks:
            if chosen is not None:
                tasks.start_soon(_embed_missing, store, chosen)
            if transport == "http":
                await server.run_streamable_http_async(host=host, port=port)
            else:
                await serve_stdio(server)
            tasks.cancel_scope.cancel()
    finally:
        await store.aclose()


def _locked(url: str, transport: str, host: str, port: int) -> StoreLockedError:
    """The error of a second server on an embedded store, saying what to do instead."""
    where = redact_url(url)
    http = f"http://{host}:{port}/mcp"
    one = (
        "keep this one and point the other clients at it"
        if transport == "http"
        else f"run one server with --http and point every client at {http}"
    )
    return StoreLockedError(
        f"surreal-store mcp: {where} is open in another process (another MCP server, or "
        "another program on the store), and an embedded store serves one process at a time: "
        f"{one}, or serve the store from SurrealDB (docker compose up -d, with the project's "
        "docker-compose.yml) and start each MCP server with --url ws://127.0.0.1:8000"
    )


def _plain_notices() -> None:
    """The server's notices go to stderr as plain lines: the MCP library's own handler lays
    log records out in a table padded to the terminal's width (trailing spaces, cut words)."""
    if not any(getattr(h, "_surreal_store", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._surreal_store = True  # type: ignore[attr-defined]
        log.addHandler(handler)
        log.propagate = False


async def _start_embedder(
    store: Store, choice: EmbedderChoice, named: memory.Embedder | None = None
) -> memory.Embedder | None:
    """The embedder ``choice`` names for ``store`` (``named``: already made from it), checked
    against the store's space (a mismatch is :class:`EmbeddingSpaceError`, in one line that
    says what to start with); on a store with no space yet, its space is declared from the
    embedder (when the session may)."""
    space = await memory.get_space(store)
    chosen = named if named is not None else resolve_embedder(choice, space)
    if chosen is None:
        if choice == "auto" and space is None:
            log.warning(
                "surreal-store mcp: the store has no embedding space yet, so recall is full "
                "text; start with --embedder hashing (or sentence-transformers:NAME) to embed "
                "memories, those stored meanwhile included"
            )
        elif choice != "auto" or space is not None:
            log.warning("surreal-store mcp: no embedder, so recall is full text only")
        return None
    if space is not None:
        if not fits(chosen, space):
            raise EmbeddingSpaceError(
                f"--embedder {choice} is {chosen.model} ({chosen.dimension}-d), but the store's "
                f"space is {space.writing_model} ({space.index_dimension}-d): start with "
                "--embedder auto (the store's own), or move the store to the new model with "
                "memory.reembed"
            )
    elif not store.signed_in_as.restricted:
        await memory.declare_space(store, model=chosen.model, dimension=chosen.dimension)
    return chosen


async def _embed_missing(store: Store, embedder: memory.Embedder) -> None:
    """Embed the memories stored without a vector (a server without an embedder wrote them),
    so that vector recall finds them too."""
    try:
        report = await memory.reembed(store, embedder=embedder)
    except StoreError as exc:  # a session that may not write them: they stay full text
        log.warning("surreal-store mcp: memories without a vector stay unembedded: %s", exc)
        return
    if report.embedded:
        n = report.embedded
        log.warning(
            "surreal-store mcp: embedded %d %s stored without a vector",
            n,
            "memory" if n == 1 else "memories",
        )


async def _get(session: _Session, memory_id: str) -> dict[str, Any]:
    return _memory_out(await memory.get(session.store, memory=memory_id))
