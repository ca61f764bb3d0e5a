"""A LangGraph checkpointer on the store: checkpoints, pending writes and channel values in
SurrealDB (schema ``014_langgraph``), one round trip per call (per page, listing)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from pydantic import BaseModel

from .._api import public
from .._client import Store
from .._doors import Home, sync_opener
from .._errors import ValidationError
from .._surql import as_array
from .._types import RecordId, check_text

__all__ = ["SurrealCheckpointSaver", "checkpoint_record"]

_PAGE: Final = 100
"""Checkpoints read per query while listing."""


def checkpoint_record(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> RecordId:
    """The record of a checkpoint: ``lg_checkpoint:[thread, ns, id]``."""
    return RecordId("lg_checkpoint", [thread_id, checkpoint_ns, checkpoint_id])


def _blob_key(type_: str, data: bytes) -> str:
    # The database recomputes this on every new blob (schema 014): base64 without padding.
    encoded = base64.b64encode(data).decode().rstrip("=")
    return hashlib.sha256(f"{type_}:{encoded}".encode()).hexdigest()


def _jsonable(value: Any) -> Any:
    """Metadata as JSON values, for filtering in the database (read back from the exact copy)."""
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


def _dump(serde: SerializerProtocol, value: Any, what: str) -> tuple[str, bytes]:
    try:
        return serde.dumps_typed(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValidationError(f"{what} cannot be serialised: {exc}") from exc


def _versions(value: Mapping[str, Any], what: str) -> dict[str, str | int | float]:
    out: dict[str, str | int | float] = {}
    for channel, version in value.items():
        check_text(channel, f"a channel name in {what}", limit=1024)
        if isinstance(version, bool) or not isinstance(version, str | int | float):
            raise ValidationError(f"{what}[{channel!r}] must be a str, int or float version")
        if isinstance(version, float) and version != version:
            raise ValidationError(f"{what}[{channel!r}] is NaN")
        out[channel] = version
    return out


def _configurable(config: RunnableConfig | None, what: str = "config") -> Mapping[str, Any]:
    if not isinstance(config, Mapping):
        raise ValidationError(f"{what} must be a RunnableConfig (a mapping)")
    conf = config.get("configurable")
    if not isinstance(conf, Mapping):
        raise ValidationError(f"{what} has no 'configurable' mapping")
    return conf


def _thread(conf: Mapping[str, Any]) -> str:
    thread_id = conf.get("thread_id")
    if isinstance(thread_id, int) and not isinstance(thread_id, bool):
        thread_id = str(thread_id)  # LangGraph accepts numeric thread ids
    return check_text(thread_id, "thread_id", limit=1024)


def _names(values: Sequence[str] | str, what: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ValidationError(f"{what} must be a sequence of strings")
    return [check_text(v, what, limit=1024) for v in values]


def _ns(conf: Mapping[str, Any]) -> str:
    return check_text(conf.get("checkpoint_ns", ""), "checkpoint_ns", empty=True, limit=1024)


def _optional_id(value: Any, what: str) -> str | None:
    return None if value is None else check_text(value, what, limit=256)


class _Write(BaseModel):
    checkpoint_ns: str | None = None
    checkpoint_id: str | None = None
    task_id: str
    idx: int
    channel: str
    type: str
    data: bytes = b""
    task_path: str


class _Row(BaseModel):
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_id: str | None = None
    type: str
    data: bytes = b""
    metadata_type: str
    metadata_data: bytes = b""
    blobs: dict[str, str]
    writes: list[_Write] | None = None


class _Blob(BaseModel):
    id: str
    type: str | None = None  # None: the blob is gone
    data: bytes = b""


class _Page(BaseModel):
    rows: list[_Row]
    blobs: list[_Blob]
    writes: list[_Write] | None = None


# Pages travel as one JSON text with record ids as keys, and their bytes in lists beside it:
# the SDK's pure-Python CBOR decoder would be most of the cost of a page of CBOR values. A
# checkpoint's blobs and the blobs sent beside it meet as their records' JSON texts
# ("lg_blob:<sha256>"): rewriting each link to its key in the query would cost the engine a
# closure per channel per row.
_COLUMNS: Final = (
    "id, thread_id, checkpoint_ns, checkpoint_id, parent_id, type, data, metadata_type, "
    "metadata_data, object::values(blobs) AS blob_links, blobs"
)
_WRITE_COLUMNS: Final = "task_id, idx, channel, type, data, task_path"
# A checkpoint's own writes, for pages that span threads or namespaces.
_ROW_WRITES: Final = (
    f"(SELECT {_WRITE_COLUMNS} FROM lg_write:[$parent.thread_id, "
    "$parent.checkpoint_ns, $parent.checkpoint_id, NONE, NONE]..=[$parent.thread_id, "
    "$parent.checkpoint_ns, $parent.checkpoint_id, {}, {}]) AS writes"
)
# The blobs of the rows in $rows, each sent once however many checkpoints share it (a blob gone
# missing does not come back).
_ROW_BLOBS: Final = """
LET $links = array::distinct(array::flatten($rows.blob_links));
LET $blobs = IF $links = [] { [] } ELSE { (SELECT id, type, data FROM $links) };
""" + as_array("$blobs")
_ROW_JSON: Final = "thread_id, checkpoint_ns, checkpoint_id, parent_id, type, metadata_type, blobs"
_WRITE_JSON: Final = "checkpoint_ns, checkpoint_id, task_id, idx, channel, type, task_path"


def _page_result(*, row_writes: bool, page_writes: bool) -> str:
    """The page as one JSON text without its bytes (``j``), and the bytes beside it, in the
    JSON's order: JSON has no bytes, and the SDK decodes a list of bytes far faster than the
    same in base64 strings (or than rows of CBOR values)."""
    rows = f"$rows.{{{_ROW_JSON}}}"
    if row_writes:
        rows = (
            f"$rows.map(|$r| $r.{{{_ROW_JSON}}} + "
            f"{{ writes: $r.writes.map(|$w| $w.{{{_WRITE_JSON}}}) }})"
        )
    parts = [f"rows: {rows}", "blobs: $blobs.{id, type}"]
    if page_writes:
        parts.append(f"writes: $writes.map(|$w| $w.{{{_WRITE_JSON}}})")
    out = [
        f"j: encoding::json::encode({{ {', '.join(parts)} }})",
        "rd: $rows.data",
        "rm: $rows.metadata_data",
        "bd: $blobs.data",
    ]
    if row_writes:
        out.append("rw: $rows.map(|$r| $r.writes.data)")
    if page_writes:
        out.append("wd: $writes.data")
    return "{ " + ", ".join(out) + " };\n"


def _ns_page_query(where: str) -> str:
    """A page of one thread's namespace ($t, $ns), newest first, with every blob and write
    its checkpoints hold: the writes come from one range scan over the page's checkpoints
    (read by the thread index, backwards), filtered to them by the caller."""
    return f"""
LET $rows = (SELECT {_COLUMNS} FROM lg_checkpoint
    WHERE live_thread = $t AND checkpoint_ns = $ns{where}
    ORDER BY checkpoint_id DESC LIMIT $limit);
LET $lo = array::min($rows.checkpoint_id);
LET $hi = array::max($rows.checkpoint_id);
LET $writes = IF $rows = [] {{ [] }} ELSE {{ (SELECT record::id(id)[1] AS checkpoint_ns,
    record::id(id)[2] AS checkpoint_id, {_WRITE_COLUMNS}
    FROM lg_write:[$t, $ns, $lo, NONE, NONE]..=[$t, $ns, $hi, {{}}, {{}}]) }};
{as_array("$writes")}{_ROW_BLOBS}{_page_result(row_writes=False, page_writes=True)}"""


def _any_page_query(source: str, where: str) -> str:
    """A page of checkpoints from ``source`` (a thread's every namespace, or every thread),
    newest first, each with its own writes."""
    return f"""
LET $rows = (SELECT {_COLUMNS}, {_ROW_WRITES} FROM {source}{where}
    ORDER BY checkpoint_id DESC, id DESC LIMIT $limit);
{_ROW_BLOBS}{_page_result(row_writes=True, page_writes=False)}"""


def _single_query(source: str) -> str:
    """One checkpoint (the first row of ``source``) with its writes and blobs."""
    return f"""
LET $rows = (SELECT {_COLUMNS}, {_ROW_WRITES} FROM {source});
{_ROW_BLOBS}{_page_result(row_writes=True, page_writes=False)}"""


_GET_LATEST: Final = _single_query(
    "lg_checkpoint WHERE live_thread = $t AND checkpoint_ns = $ns "
    "ORDER BY checkpoint_id DESC LIMIT 1"
)
_GET_ONE: Final = _single_query("$id WHERE live_thread != NONE")
_ONE_THREAD: Final = "lg_checkpoint WHERE live_thread = $t"
_NAMESPACES: Final = (
    "SELECT VALUE checkpoint_ns FROM lg_checkpoint WHERE live_thread = $t GROUP BY checkpoint_ns;"
)

_EVERY_THREAD: Final = "lg_checkpoint WHERE live_thread != NONE"


def _order(tup: CheckpointTuple | None) -> tuple[str, str]:
    """Newest first across namespaces: by checkpoint id, then namespace."""
    assert tup is not None
    conf = tup.config["configurable"]
    return (conf["checkpoint_id"], conf["checkpoint_ns"])


# One transaction: blobs new to the store are created (a content already stored is not written
# again), versions point at them, and the checkpoint is written (again, if LangGraph puts it
# twice) with the blob of each of its channels: those it changed from the caller, the others
# resolved here from the versions already stored, so that a read follows no version.
_PUT: Final = """
BEGIN;
INSERT INTO lg_blob $blobs.filter(|$b| !record::exists($b.id)) RETURN NONE;
INSERT INTO lg_version $versions ON DUPLICATE KEY UPDATE blob = $input.blob RETURN NONE;
LET $kept = $unchanged.map(|$e| [$e[0], type::record('lg_version', [$checkpoint.thread_id,
    $checkpoint.checkpoint_ns, $e[0], $e[1]]).blob]).filter(|$e| $e[1] != NONE);
UPSERT $id CONTENT $checkpoint + {
    blobs: object::extend(object::from_entries($kept), $changed)
} RETURN NONE;
COMMIT;
"""

# Regular writes keep the first value stored for (task, idx); special ones (errors, interrupts,
# resumes: negative idx) are replaced, as LangGraph's own savers do.
_PUT_WRITES: Final = """
BEGIN;
INSERT INTO lg_write $regular.filter(|$w| !record::exists($w.id)) RETURN NONE;
INSERT INTO lg_write $special ON DUPLICATE KEY UPDATE channel = $input.channel,
    type = $input.type, data = $input.data, task_path = $input.task_path RETURN NONE;
COMMIT;
"""

# Deleting checkpoints ($doomed, record ids): their writes go with them; a checkpoint that a
# memory cites stays as a retained record (hidden from LangGraph) with the versions it needs.
# Then the versions of the touched threads that no remaining checkpoint uses go, and the blobs
# that no version uses.
_COLLECT: Final = """
LET $cited = (SELECT VALUE id FROM $doomed WHERE count(<-sourced_from) > 0);
UPDATE $cited SET retained_at = time::now(), live_thread = NONE WHERE live_thread != NONE
    RETURN NONE;
LET $gone = array::complement($doomed, $cited);
FOR $c IN $gone {
    LET $k = record::id($c);
    DELETE lg_write:[$k[0], $k[1], $k[2], NONE, NONE]..=[$k[0], $k[1], $k[2], {}, {}];
};
DELETE $gone;
LET $threads = array::distinct($doomed.map(|$c| record::id($c)[0]));
LET $versions = array::flatten($threads.map(|$t|
    (SELECT VALUE id FROM lg_version:[$t, NONE, NONE, NONE]..=[$t, {}, {}, {}])));
LET $used = array::flatten($threads.map(|$t| (SELECT VALUE object::entries(channel_versions)
    .map(|$e| type::record('lg_version', [thread_id, checkpoint_ns, $e[0], $e[1]]))
    FROM lg_checkpoint:[$t, NONE, NONE]..=[$t, {}, {}])));
LET $unused = array::complement($versions, array::flatten($used));
LET $blobs = array::distinct((DELETE $unused RETURN BEFORE).blob);
-- (Computed first: inside DELETE (SELECT ...), $parent is not bound to the SELECT's row.)
LET $free = (SELECT VALUE id FROM $blobs WHERE count(SELECT VALUE id FROM lg_version
    WHERE blob = $parent.id LIMIT 1) = 0);
DELETE $free;
"""


def _collect_query(doomed: str) -> str:
    return f"BEGIN;\nLET $doomed = ({doomed});\n{_COLLECT}COMMIT;"


_DELETE_THREAD: Final = _collect_query(
    "SELECT VALUE id FROM lg_checkpoint:[$t, NONE, NONE]..=[$t, {}, {}] WHERE live_thread != NONE"
)
_DELETE_FOR_RUNS: Final = _collect_query(
    "SELECT VALUE id FROM lg_checkpoint WHERE run_id IN $runs AND live_thread != NONE"
)
_DELETE_IDS: Final = _collect_query("$ids")
_THREAD_IDS: Final = """
array::flatten($threads.map(|$t| (SELECT VALUE [checkpoint_ns, checkpoint_id, id]
    FROM lg_checkpoint:[$t, NONE, NONE]..=[$t, {}, {}] WHERE live_thread != NONE)));
"""


# The target gets the source's checkpoints, versions and writes under its own thread id
# (blobs are shared: content is stored once). Checkpoints it already has are overwritten.
_COPY_THREAD: Final = """
BEGIN;
LET $cps = (SELECT * FROM lg_checkpoint:[$src, NONE, NONE]..=[$src, {}, {}]
    WHERE live_thread != NONE);
INSERT INTO lg_checkpoint $cps.map(|$c| $c + {
    id: type::record('lg_checkpoint', [$dst, $c.checkpoint_ns, $c.checkpoint_id]),
    thread_id: $dst,
    live_thread: $dst,
}) ON DUPLICATE KEY UPDATE type = $input.type, data = $input.data,
    channel_versions = $input.channel_versions, blobs = $input.blobs, metadata = $input.metadata,
    metadata_type = $input.metadata_type, metadata_data = $input.metadata_data,
    parent_id = $input.parent_id, run_id = $input.run_id, live_thread = $dst, retained_at = NONE
    RETURN NONE;
LET $versions = (SELECT * FROM lg_version:[$src, NONE, NONE, NONE]..=[$src, {}, {}, {}]);
INSERT INTO lg_version $versions.map(|$v| {
    id: type::record('lg_version', array::concat([$dst], array::slice(record::id($v.id), 1))),
    blob: $v.blob,
}) ON DUPLICATE KEY UPDATE blob = $input.blob RETURN NONE;
LET $writes = (SELECT * FROM lg_write:[$src, NONE, NONE, NONE, NONE]..=[$src, {}, {}, {}, {}]);
INSERT INTO lg_write $writes.map(|$w| $w + {
    id: type::record('lg_write', array::concat([$dst], array::slice(record::id($w.id), 1))),
}) ON DUPLICATE KEY UPDATE channel = $input.channel, type = $input.type, data = $input.data,
    task_path = $input.task_path RETURN NONE;
COMMIT;
"""


class SurrealCheckpointSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer on an open :class:`~surreal_store.Store`.

    ::

        async with Store() as store:
            graph = builder.compile(checkpointer=SurrealCheckpointSaver(store))
            await graph.ainvoke(inputs, {"configurable": {"thread_id": "t1"}})

    Every method is one query (listing: one per page), in one transaction where it writes.
    Channel values are stored once per content (``lg_blob``, keyed by its SHA-256) and once per
    version of a channel, so a channel that did not change is not written again. The async
    methods are the real ones; the sync methods (for ``graph.invoke``) run them on the store's
    event loop and must be called from another thread. The saver does not close the store: its
    owner does (:meth:`from_url` opens and closes one for you).
    """

    def __init__(self, store: Store, *, serde: SerializerProtocol | None = None) -> None:
        if not isinstance(store, Store):
            raise ValidationError("SurrealCheckpointSaver needs an open surreal_store.Store")
        super().__init__(serde=serde)
        self.store = store
        self._home = Home(store, "saver", closed_to_agents="the LangGraph checkpointer")

    @classmethod
    @asynccontextmanager
    async def from_url(
        cls, /, url: str | None = None, *, serde: SerializerProtocol | None = None, **settings: Any
    ) -> AsyncIterator[SurrealCheckpointSaver]:
        """Open a store at ``url`` (the settings' default when ``None``), migrated, and yield a
        saver on it; the store is closed on exit."""
        async with Store(url, migrate=True, **settings) as store:
            yield cls(store, serde=serde)

    from_url_sync = sync_opener(
        from_url,
        """For synchronous code (``graph.invoke``): open a store at ``url`` on an event loop of
        its own, in a background thread, and yield a saver whose sync methods run there. The
        store is closed and the thread ended on exit.""",
    )

    def get_next_version(self, current: str | int | None, channel: None = None) -> str:
        """The next version of a channel: a counter and a random part, as LangGraph's own
        savers make them. Two forks from one checkpoint both advance a channel from the same
        version; the random part keeps their versions (and so their values) apart."""
        if current is None:
            number = 0
        elif isinstance(current, int):
            number = current
        else:
            number = int(str(current).split(".")[0])
        return f"{number + 1:032}.{secrets.randbelow(10**16):016}"

    # -- reading -------------------------------------------------------------------------------

    def _tuples(self, page: _Page) -> list[CheckpointTuple]:
        loads = self.serde.loads_typed
        blobs = {b.id: b for b in page.blobs}
        page_writes: dict[tuple[str | None, str | None], list[_Write]] = {}
        for w in page.writes or []:
            page_writes.setdefault((w.checkpoint_ns, w.checkpoint_id), []).append(w)
        out: list[CheckpointTuple] = []
        for row in page.rows:
            checkpoint: Checkpoint = loads((row.type, row.data))
            values: dict[str, Any] = {}
            for channel, key in row.blobs.items():
                found = blobs.get(key)
                if found is not None and found.type not in (None, "empty"):
                    values[channel] = loads((found.type, found.data))
            own = (
                row.writes
                if row.writes is not None
                else page_writes.get((row.checkpoint_ns, row.checkpoint_id), [])
            )
            writes = sorted(own, key=lambda w: (w.task_path, w.task_id, w.idx))
            conf = {"thread_id": row.thread_id, "checkpoint_ns": row.checkpoint_ns}
            out.append(
                CheckpointTuple(
                    config={"configurable": {**conf, "checkpoint_id": row.checkpoint_id}},
                    checkpoint={**checkpoint, "channel_values": values},
                    metadata=loads((row.metadata_type, row.metadata_data)),
                    parent_config=(
                        {"configurable": {**conf, "checkpoint_id": row.parent_id}}
                        if row.parent_id
                        else None
                    ),
                    pending_writes=[
                        (w.task_id, w.channel, loads((w.type, w.data))) for w in writes
                    ],
                )
            )
        return out

    async def _page(self, query: str, **params: Any) -> _Page:
        raw = await self._home.run(
            self.store.query_required_single(query, dict, idempotent=True, **params)
        )
        page = _Page.model_validate_json(raw["j"])
        for row, data, meta in zip(page.rows, raw["rd"], raw["rm"], strict=True):
            row.data, row.metadata_data = data, meta
        for blob, data in zip(page.blobs, raw["bd"], strict=True):
            blob.data = data
        for row, datas in zip(page.rows, raw.get("rw") or [], strict=False):
            for write, data in zip(row.writes or [], datas or [], strict=True):
                write.data = data
        for write, data in zip(page.writes or [], raw.get("wd") or [], strict=True):
            write.data = data
        return page

    @public
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names, or its thread's (and namespace's) latest."""
        conf = _configurable(config)
        thread_id, ns = _thread(conf), _ns(conf)
        checkpoint_id = _optional_id(get_checkpoint_id(config), "checkpoint_id")
        if checkpoint_id is None:
            page = await self._page(_GET_LATEST, t=thread_id, ns=ns)
        else:
            rid = checkpoint_record(thread_id, ns, checkpoint_id)
            page = await self._page(_GET_ONE, id=rid)
        found = self._tuples(page)
        return found[0] if found else None

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints newest first: of ``config``'s thread (and namespace, when it names one;
        every thread when ``config`` is ``None``), whose metadata has every key and value of
        ``filter``, older than ``before``, at most ``limit``."""
        params: dict[str, Any] = {}
        conditions: list[str] = []
        source: str | None = _EVERY_THREAD  # None: one thread's namespace
        if config is not None:
            conf = _configurable(config)
            params["t"] = _thread(conf)
            if conf.get("checkpoint_ns") is not None:
                params["ns"] = _ns(conf)
                source = None
            else:
                source = _ONE_THREAD
            if (cid := _optional_id(get_checkpoint_id(config), "checkpoint_id")) is not None:
                conditions.append("checkpoint_id = $cid")
                params["cid"] = cid
        if before is not None:
            bid = _optional_id(_configurable(before, "before").get("checkpoint_id"),
                               "before's checkpoint_id")  # fmt: skip
            if bid is not None:
                conditions.append("checkpoint_id < $before")
                params["before"] = bid
        if filter:
            if not isinstance(filter, Mapping):
                raise ValidationError("filter must be a mapping of metadata keys to values")
            for i, (key, value) in enumerate(filter.items()):
                if not isinstance(key, str):
                    raise ValidationError("filter keys must be strings")
                params[f"fk{i}"] = key
                if value is None:
                    conditions.append(f"metadata[$fk{i}] IN [NONE, NULL]")
                else:
                    conditions.append(f"metadata[$fk{i}] = $fv{i}")
                    params[f"fv{i}"] = _jsonable(value)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise ValidationError("limit must be an int or None")
        where = "".join(f" AND {c}" for c in conditions)
        if source == _ONE_THREAD:
            # Every namespace of the thread: each read newest first through the thread index,
            # merged here, so that no page sorts the whole thread.
            names = await self._home.run(
                self.store.query(_NAMESPACES, str, idempotent=True, t=params["t"])
            )
            streams = [
                self._pages(None, where, {**params, "ns": ns}, limit).__aiter__() for ns in names
            ]
            heads: list[CheckpointTuple | None] = [await anext(s, None) for s in streams]
            left = limit
            while left is None or left > 0:
                live = [i for i, h in enumerate(heads) if h is not None]
                if not live:
                    return
                best = max(live, key=lambda i: _order(heads[i]))
                tup = heads[best]
                assert tup is not None
                yield tup
                heads[best] = await anext(streams[best], None)
                if left is not None:
                    left -= 1
            return
        async for tup in self._pages(source, where, params, limit):
            yield tup

    async def _pages(
        self, source: str | None, where: str, params: dict[str, Any], limit: int | None
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints of one namespace of one thread (``source`` None) or of every thread,
        newest first, page by page."""
        params = dict(params)
        left = limit
        # Pages continue after the last row seen: within one namespace of one thread,
        # checkpoint_id is unique; across threads, (checkpoint_id, id) is.
        last: tuple[str, RecordId] | None = None
        while left is None or left > 0:
            after = ""
            if last is not None and source is None:
                after = " AND checkpoint_id < $last_cid"
                params["last_cid"] = last[0]
            elif last is not None:
                after = (
                    " AND (checkpoint_id < $last_cid"
                    " OR (checkpoint_id = $last_cid AND id < $last_id))"
                )
                params["last_cid"], params["last_id"] = last
            size = _PAGE if left is None else min(_PAGE, left)
            query = (
                _ns_page_query(where + after)
                if source is None
                else _any_page_query(source, where + after)
            )
            page = await self._page(query, limit=size, **params)
            for tup in self._tuples(page):
                yield tup
            if len(page.rows) < size:
                return
            if left is not None:
                left -= len(page.rows)
            r = page.rows[-1]
            last = (
                r.checkpoint_id,
                checkpoint_record(r.thread_id, r.checkpoint_ns, r.checkpoint_id),
            )

    # -- writing -------------------------------------------------------------------------------

    @public
    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store ``checkpoint`` (its channels in ``new_versions`` changed) after the one that
        ``config`` names, in one transaction; returns the config that names it."""
        conf = _configurable(config)
        thread_id, ns = _thread(conf), _ns(conf)
        parent_id = _optional_id(conf.get("checkpoint_id"), "checkpoint_id")
        if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get("id"), str):
            raise ValidationError("checkpoint must be a LangGraph Checkpoint with a string id")
        checkpoint_id = check_text(checkpoint["id"], "checkpoint id", limit=256)
        if not isinstance(metadata, Mapping):
            raise ValidationError("metadata must be a mapping")
        if not isinstance(new_versions, Mapping):
            raise ValidationError("new_versions must be a mapping of channel to version")
        if not isinstance(checkpoint.get("channel_versions") or {}, Mapping):
            raise ValidationError("the checkpoint's channel_versions must be a mapping")
        new_versions = _versions(new_versions, "new_versions")
        c: dict[str, Any] = dict(checkpoint)
        values: Mapping[str, Any] = c.pop("channel_values", None) or {}
        blobs: dict[str, dict[str, Any]] = {}
        versions: list[dict[str, Any]] = []
        versions_blob: dict[str, RecordId] = {}
        for channel, version in new_versions.items():
            type_, data = (
                _dump(self.serde, values[channel], f"channel {channel!r}")
                if channel in values
                else ("empty", b"")
            )
            blob = RecordId("lg_blob", _blob_key(type_, data))
            blobs.setdefault(str(blob.key), {"id": blob, "type": type_, "data": data})
            versions_blob[channel] = blob
            versions.append(
                {"id": RecordId("lg_version", [thread_id, ns, channel, version]), "blob": blob}
            )
        channel_versions = _versions(c.get("channel_versions") or {}, "channel_versions")
        changed: dict[str, RecordId] = {}
        unchanged: list[list[Any]] = []
        for channel, version in channel_versions.items():
            if channel in new_versions and new_versions[channel] == version:
                changed[channel] = versions_blob[channel]
            else:
                unchanged.append([channel, version])
        full_metadata = get_checkpoint_metadata(config, metadata)
        checkpoint_type, checkpoint_data = _dump(self.serde, c, "the checkpoint")
        metadata_type, metadata_data = _dump(self.serde, full_metadata, "the metadata")
        run_id = full_metadata.get("run_id")
        row = {
            "thread_id": thread_id,
            "live_thread": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
            "parent_id": parent_id,
            "type": checkpoint_type,
            "data": checkpoint_data,
            "channel_versions": channel_versions,
            "metadata_type": metadata_type,
            "metadata_data": metadata_data,
            "metadata": _jsonable(full_metadata),
            "run_id": str(run_id) if run_id is not None else None,
        }
        await self._execute(
            _PUT,
            idempotent=True,  # fixed ids throughout: a replay writes the same records
            id=checkpoint_record(thread_id, ns, checkpoint_id),
            checkpoint={k: v for k, v in row.items() if v is not None},
            blobs=list(blobs.values()),
            versions=versions,
            changed=changed,
            unchanged=unchanged,
        )
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns,
                                 "checkpoint_id": checkpoint_id}}  # fmt: skip

    @public
    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes against the checkpoint ``config`` names."""
        conf = _configurable(config)
        thread_id, ns = _thread(conf), _ns(conf)
        checkpoint_id = _optional_id(conf.get("checkpoint_id"), "checkpoint_id")
        if checkpoint_id is None:
            raise ValidationError("put_writes needs a config that names a checkpoint_id")
        check_text(task_id, "task_id", limit=256)
        check_text(task_path, "task_path", empty=True, limit=4096)
        regular: list[dict[str, Any]] = []
        special: list[dict[str, Any]] = []
        if isinstance(writes, str | bytes) or not isinstance(writes, Sequence):
            raise ValidationError("writes must be a sequence of (channel, value) pairs")
        for i, write in enumerate(writes):
            if not isinstance(write, Sequence) or isinstance(write, str | bytes) or len(write) != 2:
                raise ValidationError(f"write {i} is not a (channel, value) pair")
            channel, value = write
            check_text(channel, "a write's channel", limit=1024)
            idx = WRITES_IDX_MAP.get(channel, i)
            type_, data = _dump(self.serde, value, f"the write to {channel!r}")
            (special if idx < 0 else regular).append(
                {
                    "id": RecordId("lg_write", [thread_id, ns, checkpoint_id, task_id, idx]),
                    "task_id": task_id,
                    "idx": idx,
                    "channel": channel,
                    "type": type_,
                    "data": data,
                    "task_path": task_path,
                }
            )
        await self._execute(_PUT_WRITES, idempotent=True, regular=regular, special=special)

    @public
    async def adelete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, write and channel value of ``thread_id`` (every namespace).
        Checkpoints that a memory cites stay as retained records, hidden from LangGraph."""
        await self._execute(_DELETE_THREAD, t=check_text(thread_id, "thread_id"))

    @public
    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) whose metadata names one of ``run_ids``."""
        runs = _names(run_ids, "run_ids")
        if runs:
            await self._execute(_DELETE_FOR_RUNS, runs=runs)

    @public
    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of one thread to another (channel values are shared,
        not copied)."""
        src = check_text(source_thread_id, "source_thread_id")
        dst = check_text(target_thread_id, "target_thread_id")
        if src == dst:
            return
        await self._execute(_COPY_THREAD, idempotent=True, src=src, dst=dst)

    @public
    async def aprune(
        self,
        thread_ids: Sequence[str],
        *,
        strategy: str = "keep_latest",
    ) -> None:
        """``keep_latest``: keep only each namespace's newest checkpoint of each thread;
        ``delete``: delete them all."""
        threads = _names(thread_ids, "thread_ids")
        if strategy not in ("keep_latest", "delete"):
            raise ValidationError(f"strategy must be keep_latest or delete, not {strategy!r}")
        if not threads:
            return
        rows = await self._home.run(
            self.store.query(_THREAD_IDS, list, idempotent=True, threads=threads)
        )
        doomed: list[RecordId] = []
        newest: dict[tuple[str, str], str] = {}
        if strategy == "keep_latest":
            for ns, checkpoint_id, rid in rows:
                key = (str(rid.key[0]), ns)
                if checkpoint_id > newest.get(key, ""):
                    newest[key] = checkpoint_id
        for ns, checkpoint_id, rid in rows:
            if newest.get((str(rid.key[0]), ns)) != checkpoint_id:
                doomed.append(rid)
        if doomed:
            await self._execute(_DELETE_IDS, ids=doomed)

    async def _execute(self, query: str, *, idempotent: bool = False, **params: Any) -> None:
        await self._home.run(self.store.execute(query, idempotent=idempotent, **params))

    # -- sync --------------------------------------------------------------------------------
    # Each runs its async twin on the store's event loop, from another thread.

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Sync :meth:`aget_tuple` (from another thread than the store's loop)."""
        return self._home.wait(self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Sync :meth:`alist` (from another thread than the store's loop)."""

        async def collect() -> list[CheckpointTuple]:
            return [t async for t in self.alist(config, filter=filter, before=before, limit=limit)]

        yield from self._home.wait(collect())

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Sync :meth:`aput` (from another thread than the store's loop)."""
        return self._home.wait(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Sync :meth:`aput_writes` (from another thread than the store's loop)."""
        self._home.wait(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        """Sync :meth:`adelete_thread` (from another thread than the store's loop)."""
        self._home.wait(self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Sync :meth:`adelete_for_runs` (from another thread than the store's loop)."""
        self._home.wait(self.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Sync :meth:`acopy_thread` (from another thread than the store's loop)."""
        self._home.wait(self.acopy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Sync :meth:`aprune` (from another thread than the store's loop)."""
        self._home.wait(self.aprune(thread_ids, strategy=strategy))
