"""A LangGraph ``BaseStore`` on the store: items in ``lg_item`` (schema ``015_langgraph_store``),
their indexed texts as memories, searched with the memory layer's recall."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, Final, Literal, TypeVar

from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    ensure_embeddings,
    get_text_at_path,
    tokenize_path,
    validate_op_namespace,
)
from pydantic import BaseModel, ConfigDict

from .._api import public
from .._client import Store
from .._doors import (
    MAX_K,
    DoorSpace,
    Found,
    Home,
    IndexUpkeep,
    model_of,
    new_scope,
    owned_row,
    owned_write_query,
    sync_opener,
    tagged_recall,
    write_owned,
)
from .._errors import DimensionError, ValidationError
from .._match import match_conditions
from .._types import RecordId, check_text, json_value
from ..memory._checks import check_vector

__all__ = ["ITEM_KIND", "NamespaceError", "SurrealStore", "item_record"]

T = TypeVar("T")

ITEM_KIND: Final = "langgraph_item"
"""The kind of the memories that hold items' indexed texts."""
_NS_TAG: Final = "langgraph.ns:"
_MAX_OPS: Final = 1000
_REBUILD_CHECK: Final = 1000


def item_record(namespace: Sequence[str], key: str) -> RecordId:
    """The record of an item: ``lg_item:[namespace, key]``."""
    return RecordId("lg_item", [list(namespace), key])


def _ns_path(namespace: Sequence[str]) -> str:
    # Each label followed by "." (which no label holds): a prefix of labels is a prefix here.
    return "".join(f"{label}." for label in namespace)


def _ns_tags(namespace: Sequence[str]) -> list[str]:
    return [_NS_TAG + _ns_path(namespace[:depth]) for depth in range(1, len(namespace) + 1)]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _ItemRow(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    id: RecordId
    namespace: list[str]
    key: str
    value: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime

    def item(self) -> Item:
        return Item(
            value=self.value,
            key=self.key,
            namespace=tuple(self.namespace),
            created_at=self.created_at,
            updated_at=self.updated_at,
        )

    def search_item(self) -> SearchItem:
        return SearchItem(
            namespace=tuple(self.namespace),
            key=self.key,
            value=self.value,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )


_ITEM_COLUMNS: Final = "id, namespace, key, value, created_at, updated_at"
# Times are the client's clock (``$now``), in writes and reads alike: one clock for a TTL.
_LIVE: Final = "(expires_at = NONE OR expires_at > $now)"

# An item's time to live restarts from now: the item's expiry and its memories' validity.
_REFRESH: Final = """
LET $due = $refresh.filter(|$i| $i.ttl_minutes != NONE AND $i.expires_at > $now);
FOR $it IN $due {
    LET $until = $now + duration::from_millis(<int>math::max([1,
        math::round($it.ttl_minutes * 60000)]));
    UPDATE $it SET expires_at = $until RETURN NONE;
    LET $memories = $it.memories;
    IF $memories != [] { UPDATE $memories SET valid_until = $until RETURN NONE };
};
"""

_GET: Final = f"""
BEGIN;
{_REFRESH}
SELECT {_ITEM_COLUMNS} FROM $ids WHERE {_LIVE};
COMMIT;
"""

# Puts and deletes of one batch, in one transaction (the doors' owned write): an item's previous
# memories are replaced by its new ones.
_UPSERT: Final = """
INSERT INTO lg_item $items ON DUPLICATE KEY UPDATE
    value = $input.value, created_at = $input.created_at,
    updated_at = $input.updated_at, ttl_minutes = $input.ttl_minutes,
    expires_at = $input.expires_at, memories = $input.memories RETURN NONE;
"""
_WRITE: Final = owned_write_query(
    upsert=_UPSERT,
    written="$items.map(|$i| $i.id)",
    all_targets="SELECT VALUE id FROM lg_item WHERE expires_at != NONE AND expires_at <= $now",
    by="langgraph",
)

_NAMESPACES: Final = f"SELECT namespace FROM lg_item WHERE {_LIVE}{{where}} GROUP BY namespace;"


class NamespaceError(ValidationError, InvalidNamespaceError):
    """A namespace LangGraph refuses (empty, a label empty, not a string or with a "." or
    NUL): both our :class:`ValidationError` and LangGraph's ``InvalidNamespaceError``."""


def _check_namespace(namespace: Any, *, put: bool) -> tuple[str, ...]:
    if isinstance(namespace, str) or not isinstance(namespace, tuple | list):
        raise NamespaceError(f"a namespace is a tuple of strings, not {namespace!r}")
    labels: tuple[str, ...] = tuple(namespace)
    # The root label "langgraph" is refused by BaseStore's put, not by a batch: LangGraph
    # writes there itself.
    if put and not labels:
        raise NamespaceError("Namespace cannot be empty.")
    try:
        validate_op_namespace(GetOp(labels, ""))
    except InvalidNamespaceError as exc:
        raise NamespaceError(str(exc)) from None
    for label in labels:
        check_text(label, "a namespace label")
    return labels


def _matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path, strict=False)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path), strict=False)
    else:
        raise ValidationError(f"unsupported match type {condition.match_type!r}")
    return all(p == "*" or n == p for n, p in pairs)


def _check_page(limit: Any, offset: Any) -> tuple[int, int]:
    for name, value in (("limit", limit), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValidationError(f"{name} must be an int ≥ 0, not {value!r}")
    return limit, offset


class SurrealStore(BaseStore):
    """LangGraph's long-term memory store (``BaseStore``) on an open
    :class:`~surreal_store.Store`.

    ::

        async with Store() as store:
            lg_store = SurrealStore(store, index={"dims": 384, "embed": embeddings})
            graph = builder.compile(store=lg_store)

    Items persist in the store (``lg_item``). With an ``index``, each indexed text of an item is
    a memory (kind :data:`ITEM_KIND`), and search with a query is the memory layer's recall:
    vector recall (``search_mode="vector"``, scores are cosine similarities) or hybrid
    (``"hybrid"``: the query's words and its vector, fused by reciprocal rank). Filters are
    exact: ``{"path.to": value}`` or operators ``$eq $ne $gt $gte $lt $lte``. Namespaces compare
    label by label.

    ``ttl`` is LangGraph's ``TTLConfig``: ``default_ttl`` (minutes), ``refresh_on_read`` (reads
    restart an item's time to live; off unless set, as in LangGraph's SQLite store) and
    ``sweep_interval_minutes`` (for :meth:`start_ttl_sweeper`). An expired item is never
    returned, and a sweep deletes it. ``model`` names the embedding model for the store's
    embedding space (default: the embeddings' ``model`` attribute).

    The async methods are the real ones; the sync ones run them on the store's event loop from
    another thread (:meth:`from_url_sync` makes such a store). The store is not closed by this
    object: its owner closes it.
    """

    supports_ttl = True

    def __init__(
        self,
        store: Store,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        model: str | None = None,
        search_mode: Literal["vector", "hybrid"] = "vector",
    ) -> None:
        if not isinstance(store, Store):
            raise ValidationError("SurrealStore needs an open surreal_store.Store")
        if search_mode not in ("vector", "hybrid"):
            raise ValidationError(f"search_mode must be 'vector' or 'hybrid', not {search_mode!r}")
        self.store = store
        self.search_mode = search_mode
        self.index_config: IndexConfig | None = None
        self.embeddings: Any = None
        self._fields: list[tuple[str, Any]] = []
        self._dims = 0
        if index is not None:
            if not isinstance(index, Mapping):
                raise ValidationError("index must be an IndexConfig mapping")
            dims = index.get("dims")
            if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
                raise ValidationError(f"index['dims'] must be a positive int, not {dims!r}")
            self.index_config = IndexConfig(**index)
            self.embeddings = ensure_embeddings(index.get("embed"))
            self._dims = dims
            fields = index.get("fields") or ["$"]
            self._fields = [(p, tokenize_path(p) if p != "$" else p) for p in fields]
        if ttl is not None:
            if not isinstance(ttl, Mapping):
                raise ValidationError("ttl must be a TTLConfig mapping")
            for name in ("default_ttl", "sweep_interval_minutes"):
                value = ttl.get(name)
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
                ):
                    raise ValidationError(f"ttl[{name!r}] must be a positive number, not {value!r}")
        self.ttl_config = ttl
        self._space = DoorSpace(
            model
            if model is not None
            else (model_of(self.embeddings, "langgraph") if self.embeddings is not None else None)
        )
        self._home = Home(store, "store", closed_to_agents="the LangGraph store")
        self._sweeper: asyncio.Task[None] | None = None
        self._upkeep = IndexUpkeep(_REBUILD_CHECK)

    @property
    def _loop(self) -> asyncio.AbstractEventLoop | None:
        """The store's event loop (:attr:`Home.loop`), read when asked."""
        return self._home.loop

    @classmethod
    @asynccontextmanager
    async def from_url(
        cls,
        /,
        url: str | None = None,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        model: str | None = None,
        search_mode: Literal["vector", "hybrid"] = "vector",
        **settings: Any,
    ) -> AsyncIterator[SurrealStore]:
        """Open a store at ``url`` (the settings' default when ``None``), migrated, and yield a
        LangGraph store on it; on exit its TTL sweeper stops and the store is closed."""
        async with Store(url, migrate=True, **settings) as store:
            lg = cls(store, index=index, ttl=ttl, model=model, search_mode=search_mode)
            await lg.setup()
            try:
                yield lg
            finally:
                await lg.astop_ttl_sweeper()

    from_url_sync = sync_opener(
        from_url,
        """For synchronous code (``graph.invoke``, ``store.put``): open a store at ``url`` on an
        event loop of its own in a background thread and yield a LangGraph store whose sync
        methods run there. On exit the sweeper stops, the store closes and the thread ends.""",
    )

    # -- setup -------------------------------------------------------------------------------

    async def setup(self) -> None:
        """Declare the store's embedding space for the index (or check that the one declared
        has this model and dimension). Done on first use when not called."""
        if self.embeddings is not None:
            await self._space.declare(self.store, self._dims)

    def setup_sync(self) -> None:
        """Sync :meth:`setup`."""
        self._home.wait(self.setup())

    # -- batch -------------------------------------------------------------------------------

    @public
    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` (gets, searches and namespace listings see the store as it was before
        the batch; its puts and deletes are then applied together, the last one per item
        winning, in one transaction)."""
        return await self._home.run(self._abatch(list(ops)))

    async def _abatch(self, ops: list[Op]) -> list[Result]:
        if len(ops) > _MAX_OPS:
            raise ValidationError(f"a batch holds at most {_MAX_OPS} operations")
        puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
        for i, op in enumerate(ops):
            if not isinstance(op, GetOp | PutOp | SearchOp | ListNamespacesOp):
                raise ValidationError(f"unknown operation {type(op).__name__}")
            if isinstance(op, GetOp | PutOp):
                namespace = _check_namespace(op.namespace, put=isinstance(op, PutOp))
                check_text(op.key, "a key", empty=True)
                op = ops[i] = op._replace(namespace=namespace)
            if isinstance(op, PutOp):
                puts[(op.namespace, op.key)] = op
            elif isinstance(op, SearchOp):
                prefix = _check_namespace(op.namespace_prefix, put=False)
                _check_page(op.limit, op.offset)
                if op.filter is not None and not isinstance(op.filter, Mapping):
                    raise ValidationError("filter must be a mapping of value paths to values")
                ops[i] = op._replace(namespace_prefix=prefix)
            elif isinstance(op, ListNamespacesOp):
                conditions = []
                for c in op.match_conditions or ():
                    if not isinstance(c, MatchCondition) or c.match_type not in (
                        "prefix",
                        "suffix",
                    ):
                        raise ValidationError(f"not a prefix or suffix condition: {c!r}")
                    conditions.append(c._replace(path=_check_namespace(c.path, put=False)))
                ops[i] = op._replace(match_conditions=tuple(conditions))
                _check_page(op.limit, op.offset)
                if op.max_depth is not None and (
                    isinstance(op.max_depth, bool)
                    or not isinstance(op.max_depth, int)
                    or op.max_depth < 1
                ):
                    raise ValidationError(f"max_depth must be an int ≥ 1, not {op.max_depth!r}")
        await self.setup()
        writes = await self._prepare_puts(list(puts.values())) if puts else None
        results: list[Result] = [None] * len(ops)
        gets = [(i, op) for i, op in enumerate(ops) if isinstance(op, GetOp)]
        if gets:
            found = await self._get_many([op for _, op in gets])
            for i, op in gets:
                results[i] = found.get((op.namespace, op.key))
        for i, op in enumerate(ops):
            if isinstance(op, SearchOp):
                results[i] = await self._search(op)
            elif isinstance(op, ListNamespacesOp):
                results[i] = await self._list_namespaces(op)
        if writes is not None:
            await self._write(writes["puts"], deletes=writes["deletes"])
            await self._upkeep.wrote(self.store, sum(len(p["texts"]) for p in writes["puts"]))
        return results

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Sync :meth:`abatch` (from another thread than the store's loop)."""
        result: list[Result] = self._home.wait(self.abatch(list(ops)))
        return result

    # -- reads -------------------------------------------------------------------------------

    def _refreshing(self, refresh_ttl: bool) -> bool:
        # As LangGraph's SQLite store: a read refreshes when it asks to (BaseStore asks by
        # default) and the TTL config turns refresh_on_read on.
        return bool(refresh_ttl) and bool((self.ttl_config or {}).get("refresh_on_read", False))

    async def _get_many(self, ops: Sequence[GetOp]) -> dict[tuple[tuple[str, ...], str], Item]:
        ids = list({item_record(op.namespace, op.key): None for op in ops})
        refresh = [
            item_record(op.namespace, op.key) for op in ops if self._refreshing(op.refresh_ttl)
        ]
        rows = await self.store.query(_GET, _ItemRow, ids=ids, refresh=refresh, now=_now())
        return {(tuple(r.namespace), r.key): r.item() for r in rows}

    async def _refresh(self, ids: Sequence[RecordId]) -> None:
        if ids:
            await self.store.execute(f"BEGIN;\n{_REFRESH}COMMIT;", refresh=list(ids), now=_now())

    async def _search(self, op: SearchOp) -> list[SearchItem]:
        if op.query and self.embeddings is not None:
            found = await self._recall(op)
        else:
            found = await self._scan(op)
        if self._refreshing(op.refresh_ttl) and found:
            await self._refresh([item_record(i.namespace, i.key) for i in found])
        return found

    async def _scan(self, op: SearchOp, *, unindexed: bool = False) -> list[SearchItem]:
        conditions: list[str] = [_LIVE, "memories = []"] if unindexed else [_LIVE]
        params: dict[str, Any] = {"limit": op.limit, "offset": op.offset, "now": _now()}
        if op.namespace_prefix:
            path = _ns_path(op.namespace_prefix)
            # Labels hold no ".", and "/" follows "." : the range is exactly the prefix.
            conditions.append("ns_path >= $ns_low AND ns_path < $ns_high")
            params.update(ns_low=path, ns_high=path[:-1] + "/")
        if op.filter:
            matched, matched_params = match_conditions(op.filter, field="value", prefix="vf")
            conditions += matched
            params.update(matched_params)
        text = (
            f"SELECT {_ITEM_COLUMNS} FROM lg_item WHERE {' AND '.join(conditions)} "
            "ORDER BY updated_at DESC, id LIMIT $limit START $offset;"
        )
        rows = await self.store.query(text, _ItemRow, **params)
        return [r.search_item() for r in rows]

    async def _recall(self, op: SearchOp) -> list[SearchItem]:
        wanted = op.offset + op.limit
        if wanted > MAX_K:
            raise ValidationError(
                f"a search with a query reaches at most {MAX_K} items (offset + limit)"
            )
        if op.limit == 0:
            return []
        assert op.query is not None
        vector = _check_vector(await self.embeddings.aembed_query(op.query), self._dims)
        value_filter = {f"value.{k}": v for k, v in (op.filter or {}).items()}
        now = _now()
        tag = _NS_TAG + _ns_path(op.namespace_prefix) if op.namespace_prefix else None
        text = op.query if self.search_mode == "hybrid" else None
        seen: dict[tuple[tuple[str, ...], str], SearchItem] = {}
        k = wanted
        # A vector search with no value filter first tries a recall over the whole store: its
        # three filters (kind, namespace, live) each cost the index search more than the
        # check here, when the namespace holds most of the store.
        kept = None if op.filter or text is not None else (lambda m: _admitted(m, tag, now))
        while len(seen) < wanted:
            hits = await tagged_recall(
                self.store,
                tag=tag,
                text=text,
                vector=vector,
                k=k,
                kind=ITEM_KIND,
                metadata=value_filter or None,
                valid_at=now,
                kept=kept,
            )
            kept = None
            seen.clear()
            _collect(seen, hits)
            # An item has one memory per indexed text: ask for more until enough items.
            if len(hits) < k or k >= MAX_K:
                break
            k = min(k * 2, MAX_K)
        found = list(seen.values())
        if len(found) < wanted:
            # As InMemoryStore: items with no vector (index=False, no text at the indexed
            # paths) follow the scored ones, unscored.
            found += await self._scan(
                op._replace(limit=wanted - len(found), offset=0), unindexed=True
            )
        return found[op.offset : wanted]

    async def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        where, params = "", dict[str, Any]()
        for condition in op.match_conditions or ():
            path = tuple(condition.path)
            if condition.match_type == "prefix" and path and "*" not in path:
                prefix = _ns_path(path)
                where = " AND ns_path >= $ns_low AND ns_path < $ns_high"
                params = {"ns_low": prefix, "ns_high": prefix[:-1] + "/"}
                break
        rows = await self.store.query(_NAMESPACES.format(where=where), dict, now=_now(), **params)
        namespaces = [tuple(r["namespace"]) for r in rows]
        for condition in op.match_conditions or ():
            namespaces = [ns for ns in namespaces if _matches(condition, ns)]
        if op.max_depth is not None:
            namespaces = list({ns[: op.max_depth] for ns in namespaces})
        namespaces.sort()
        return namespaces[op.offset : op.offset + op.limit]

    # -- writes ------------------------------------------------------------------------------

    async def _prepare_puts(self, ops: Sequence[PutOp]) -> dict[str, Any]:
        puts: list[dict[str, Any]] = []
        deletes: list[RecordId] = []
        texts: list[str] = []
        owners: list[tuple[int, str]] = []
        for op in ops:
            rid = item_record(op.namespace, op.key)
            if op.value is None:
                deletes.append(rid)
                continue
            if not isinstance(op.value, Mapping):
                raise ValidationError(f"the value of {op.key!r} must be a dict, not {op.value!r}")
            value = json_value(dict(op.value), what=f"the value of {op.key!r}")
            ttl = op.ttl
            if ttl is not None and (
                isinstance(ttl, bool)
                or not isinstance(ttl, int | float)
                or not ttl > 0
                or not math.isfinite(ttl)
            ):
                raise ValidationError(f"ttl must be a positive number of minutes, not {ttl!r}")
            if (
                op.index is not None
                and op.index is not False
                and (isinstance(op.index, str) or not isinstance(op.index, Sequence))
            ):
                raise ValidationError("index must be False or a list of field paths")
            puts.append(
                {
                    "id": rid,
                    "namespace": list(op.namespace),
                    "ns_path": _ns_path(op.namespace),
                    "key": op.key,
                    "value": value,
                    "ttl_minutes": float(ttl) if ttl is not None else None,
                    "texts": {},
                }
            )
            if self.embeddings is None or op.index is False:
                continue
            fields = (
                self._fields
                if op.index is None
                else [(p, tokenize_path(p) if p != "$" else p) for p in op.index]
            )
            for _path, tokens in fields:
                for text in get_text_at_path(op.value, tokens):
                    texts.append(check_text(text, "an indexed text", empty=True))
                    owners.append((len(puts) - 1, text))
        vectors: list[list[float]] = []
        if texts:
            vectors = [
                _check_vector(v, self._dims) for v in await self.embeddings.aembed_documents(texts)
            ]
            if len(vectors) != len(texts):
                raise ValidationError(
                    f"the embeddings returned {len(vectors)} vectors for {len(texts)} texts"
                )
        for (index, text), vector in zip(owners, vectors, strict=True):
            texts_of: dict[str, list[float]] = puts[index]["texts"]
            texts_of.setdefault(text, vector)  # the same text twice in one item: one memory
        return {"puts": puts, "deletes": deletes}

    async def _write(
        self, puts: Sequence[Mapping[str, Any]], *, deletes: Sequence[RecordId] | None
    ) -> int:
        """Apply ``puts`` and ``deletes`` (``None``: the expired items); how many went."""
        now = _now()
        items: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        for put in puts:
            ttl = put["ttl_minutes"]
            until = now + dt.timedelta(minutes=ttl) if ttl is not None else None
            scope = new_scope("langgraph")
            put_rows = [
                owned_row(
                    scope=scope,
                    content=text,
                    key=json.dumps([*put["namespace"], put["key"]], ensure_ascii=False),
                    kind=ITEM_KIND,
                    tags=_ns_tags(put["namespace"]),
                    metadata={
                        "namespace": put["namespace"],
                        "key": put["key"],
                        "value": put["value"],
                    },
                    embedding=vector,
                    embedding_model=self._space.writing_model,
                    now=now,
                    valid_until=until,
                )
                for text, vector in put["texts"].items()
            ]
            rows += put_rows
            items.append({
                "id": put["id"], "namespace": put["namespace"], "ns_path": put["ns_path"],
                "key": put["key"], "value": put["value"], "created_at": now,
                "updated_at": now, "ttl_minutes": ttl, "expires_at": until,
                "memories": [r["id"] for r in put_rows],
            })  # fmt: skip
        for item in items:
            for name in ("ttl_minutes", "expires_at"):
                if item[name] is None:
                    del item[name]  # absent: NONE
        return await write_owned(
            self.store,
            _WRITE,
            items=items,
            rows=rows,
            # None: the expired items, found by the query.
            deletes=deletes,
            now=now,
        )

    # -- time to live ------------------------------------------------------------------------

    @public
    async def asweep_ttl(self) -> int:
        """Delete the expired items (and their memories) now; returns how many."""
        return await self._home.run(self._write([], deletes=None))

    def sweep_ttl(self) -> int:
        """Sync :meth:`asweep_ttl`."""
        removed: int = self._home.wait(self.asweep_ttl())
        return removed

    async def astart_ttl_sweeper(self, sweep_interval_minutes: float | None = None) -> None:
        """Sweep expired items every ``sweep_interval_minutes`` (default: the TTL config's, or
        5) in a task on the store's loop, until :meth:`astop_ttl_sweeper`."""
        interval = (
            sweep_interval_minutes or (self.ttl_config or {}).get("sweep_interval_minutes") or 5
        )
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
            raise ValidationError(f"the sweep interval must be positive, not {interval!r}")
        if self._sweeper is not None and not self._sweeper.done():
            return

        async def sweep() -> None:
            while True:
                await asyncio.sleep(interval * 60)
                await self.asweep_ttl()

        self._sweeper = asyncio.get_running_loop().create_task(sweep())

    async def astop_ttl_sweeper(self) -> bool:
        """Stop the sweeper; True when one was running."""
        task, self._sweeper = self._sweeper, None
        if task is None or task.done():
            return False
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        return True

    def start_ttl_sweeper(self, sweep_interval_minutes: float | None = None) -> None:
        """Sync :meth:`astart_ttl_sweeper`."""
        self._home.wait(self.astart_ttl_sweeper(sweep_interval_minutes))

    def stop_ttl_sweeper(self) -> bool:
        """Sync :meth:`astop_ttl_sweeper`."""
        stopped: bool = self._home.wait(self.astop_ttl_sweeper())
        return stopped

    # -- provenance --------------------------------------------------------------------------

    @public
    async def amemories(self, namespace: tuple[str, ...], key: str) -> list[str]:
        """The ids of the memories holding the item's indexed texts (for
        :func:`surreal_store.provenance.why` and friends); ``[]`` when it has none."""
        namespace = _check_namespace(namespace, put=False)
        found = await self._home.run(
            self.store.query(
                f"SELECT VALUE memories.map(|$m| record::id($m)) FROM $ids WHERE {_LIVE};",
                list[str],
                ids=[item_record(namespace, check_text(key, "a key", empty=True))],
                now=_now(),
            ),
        )
        return found[0] if found else []

    def memories(self, namespace: tuple[str, ...], key: str) -> list[str]:
        """Sync :meth:`amemories`."""
        found: list[str] = self._home.wait(self.amemories(namespace, key))
        return found


def _admitted(m: Found, tag: str | None, now: dt.datetime) -> bool:
    """Whether the filtered recall of a search admits ``m`` (the namespace's tag, live)."""
    return (
        m.kind == ITEM_KIND
        and (tag is None or tag in m.tags)
        and m.valid_from <= now
        and (m.valid_until is None or m.valid_until > now)
    )


def _collect(seen: dict[tuple[tuple[str, ...], str], SearchItem], hits: Sequence[Found]) -> None:
    """The items of ``hits`` in rank order, each at its best score (its first hit)."""
    for hit in hits:
        meta = hit.metadata
        key = (tuple(meta["namespace"]), meta["key"])
        if key not in seen:
            seen[key] = SearchItem(
                namespace=key[0],
                key=key[1],
                value=meta["value"],
                created_at=hit.created_at,
                updated_at=hit.created_at,
                score=hit.score,
            )


def _check_vector(vector: Any, dims: int) -> list[float]:
    out = check_vector(vector, "a vector from the embeddings")
    if len(out) != dims:
        raise DimensionError(f"the embeddings returned {len(out)} dimensions; the index has {dims}")
    return out
