"""The derived recall index: an in-process HNSW graph (hnswlib) and BM25 index (tantivy) over
the memory table, with the columns recall filters on, kept in step with the table's change feed.

The database stays the source of truth: the index answers a recall only once a look at the
table's change feed has shown that it reflects the table as it is. It follows every change to
the table, whoever made it (our API, raw SurrealQL, another client of a server):

* it records the versionstamp it reflects, and each recall reads the feed from there
  (``SHOW CHANGES FOR TABLE memory``) in one round trip (:func:`read_if_current`), which
  also reads the rows it does not keep, if any; if anything changed, the index applies each
  change (an ``update`` carries the whole record, a ``delete`` its id; both are idempotent, so
  replaying a range is harmless) and the recall chooses its candidates again;
* it is saved beside an embedded store (:mod:`._index_files`: a generation published whole,
  named by the database's ``memory_index:identity`` record, which each save moves on) on
  close and after large catch-ups; reopening loads the generation the database names, once
  every file checks out, and replays the feed from its versionstamp, so a crash costs the
  changes since the last save, not a rebuild; a restored older copy of the database, a new
  database at the same path or another store's files never match;
* with no usable saved generation, or one older than the feed keeps (``FEED_RETENTION``), it
  is built from the table itself, in pages, and then replays the feed from the build's start.

Only a session with the owner's rights (an embedded store opened without credentials, a
root user, an OWNER) writes or removes files; another keeps what it loads or builds in memory.

Filters are computed on columns kept here (scope, kind, key, agent, commit, tags, the four
times to the nanosecond, liveness) as a mask of exactly what the database admits; metadata
filters ask the database. Each memory's row, as a read returns it (its vector left out), is
kept too, in CBOR (:func:`~surreal_store._client.encode_row`): a current index returns it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import anyio
import cbor2
import hnswlib
import numpy as np
import tantivy

from .._errors import PermissionDeniedError, QueryError, StoreError
from .._types import RecordId
from ._index_files import (
    Identity,
    Unusable,
    database_folder,
    legacy_folder,
    new_token,
    read_generation,
    remove_legacy,
    scratch_folder,
    sweep,
    working_copy,
    write_generation,
)
from ._models import FIELDS, vector_of
from ._recall_index._rows import Rows, decode_row, encode_row

__all__ = [
    "FEED_RETENTION",
    "Broken",
    "DerivedIndex",
    "IndexStatus",
    "Stale",
    "catch_up",
    "derived_index",
    "guarded",
    "publish",
    "read_if_current",
]

log = logging.getLogger("surreal_store.memory")

FEED_RETENTION: Final = dt.timedelta(days=30)
"""How long the memory table's change feed keeps a change (schema 018)."""
# A saved index older than this is rebuilt rather than caught up: the feed may have lost the
# changes since (a day's margin under the retention).
_MAX_AGE: Final = FEED_RETENTION - dt.timedelta(days=1)
# The feed pages by transactions, and one bulk write carries up to 1,000 memories: a page of
# 1,000 transactions once came back as 50k whole records (gigabytes in flight). A page asks for
# about _FEED_ROWS changes, by the transactions' size so far.
_FEED_ROWS: Final = 2000
_FEED_MAX: Final = 1000
_BUILD_PAGE: Final = 2000
_SAVE_AFTER: Final = 5000  # changes applied since the last save
_HNSW_M: Final = 16
# 100k clustered 384-d: recall@10 0.970 at ef 64, as 200 gives, in two thirds of the build.
_HNSW_EFC: Final = 100
# A saved index whose versionstamp is later than the database's clock by more than this is
# newer than the database it is beside (a restored older copy): not used.
_CLOCK_SLACK_MS: Final = 2_000
_NO_TIME: Final = np.iinfo(np.int64).max
_NO_CODE: Final = -1
_UNKNOWN: Final = -2
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# English function words dropped before the text is split, as schema 006's analyzer does.
STOPWORDS: Final = [
    "a",
    "an",
    "and",
    "are",
    "as",
    "at",
    "be",
    "been",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "for",
    "from",
    "had",
    "has",
    "have",
    "he",
    "her",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "me",
    "my",
    "no",
    "not",
    "of",
    "on",
    "or",
    "our",
    "she",
    "so",
    "such",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "to",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "who",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
]

# What recall returns of a memory, kept per slot (the feed's updates carry the whole record).
_ROW_FIELDS: Final = tuple(name.strip() for name in FIELDS.split(","))
# What a rebuild reads: the row and the vector.
_BUILD_FIELDS: Final = f"{FIELDS}, embedding, embedding_stash"
# Pages follow the table's key order, each starting where the last ended. On 3.2.4 a record
# range with a LIMIT (`memory:⟨key⟩>.. LIMIT n`) reads every record to the table's end before
# it stops, which made a build quadratic (100k memories: 261 s, against 1.7 s for this page
# near the end); `WHERE id > $after` reads the page only.
_BUILD_FIRST = f"SELECT {_BUILD_FIELDS} FROM memory LIMIT {_BUILD_PAGE};"
_BUILD_NEXT = f"SELECT {_BUILD_FIELDS} FROM memory WHERE id > $after LIMIT {_BUILD_PAGE};"


def ns(value: Any) -> int:
    """A datetime as int nanoseconds since the epoch (the SDK's PreciseDatetime keeps them);
    ``None`` as the latest time there is (an open end)."""
    if value is None:
        return int(_NO_TIME)
    delta = value - _EPOCH
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    return int(ns) + int(getattr(value, "nanosecond", 0))


def _key(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, RecordId):
        # A filter names records by string keys: `agent:1` (a number) must not pass for
        # `agent:⟨1⟩`, so other keys get a code no string key has (the mask is exact).
        return value.key if type(value.key) is str else f"\0{value.key!r}"
    return str(value)


# fn::memory_text (schema 006), the first step of the schema's analyzer: lowercase,
# punctuation to spaces, function words out (before the text is split, as there).
_PUNCTUATION: Final = re.compile(r"[^\w\s]")
_FUNCTION_WORDS: Final = re.compile(r"\b(?:" + "|".join(STOPWORDS) + r")\b")


def analysable(text: str) -> str:
    """``text`` as the schema's analyzer splits it (``fn::memory_text``)."""
    return _FUNCTION_WORDS.sub(" ", _PUNCTUATION.sub(" ", text.lower()))


def text_analyzer() -> tantivy.TextAnalyzer:
    """The rest of the schema's analyzer (``memory_text``: tokenizers blank, class, punct;
    filters lowercase, ascii, snowball) over :func:`analysable` text: runs of letters, of
    digits, and each underscore are tokens (``E1234`` is ``e`` and ``1234``)."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(r"[^\W\d_]+|\d+|_"))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def _text_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("content", stored=False, tokenizer_name="memory")
    builder.add_integer_field("slot", stored=False, indexed=True, fast=True)
    return builder.build()


@dataclass(frozen=True)
class IndexStatus:
    """What a store's recall index reflects (:func:`surreal_store.memory.index_status`)."""

    origin: Literal["built", "loaded", "new"]
    """How it came to be in this process: built from the table, loaded from disk, or new
    (an empty table)."""
    memories: int
    """Memories it holds (live and invalidated)."""
    vectors: int
    """Of those, with a vector."""
    versionstamp: int
    """The last change of the memory table it reflects."""
    caught_up: int
    """Changes applied from the feed since it was built or loaded."""
    path: Path | None
    """The folder it is saved in (``None``: kept in memory only: ``mem://``, a server, or a
    session without the owner's rights, which may load what the owner saved but never
    writes beside the store)."""
    build_s: float
    """Seconds its build or load took."""


class DerivedIndex:
    """The recall index of one database, attached to its store's connection."""

    writer: Any  # tantivy's IndexWriter; None only while being replaced
    text: Any  # tantivy's Index

    def __init__(self, path: Path | None, *, owner: bool = False, text: bool = True) -> None:
        """An empty index. ``path``: the database's folder beside an embedded store (``None``:
        kept in memory only); ``owner``: this session may write and remove files there.
        ``text=False`` leaves the text index to be opened (a load opens the saved one)."""
        self.path = path
        self.owner = owner
        self.lock = anyio.Lock()
        self.versionstamp = 0
        self.origin: Literal["built", "loaded", "new"] = "new"
        self.caught_up = 0
        self.build_s = 0.0
        self.unsaved = 0
        self.feed_limit = 16  # transactions per page of the feed (see _FEED_ROWS)
        self.dim = 0
        self.space: dict[str, Any] | None = None  # embedding_space:active at the last catch-up
        # The database's identity this index reflects (None until known): its saves move the
        # epoch on from here.
        self.identity: Identity | None = None
        self.loadable = True  # a saved generation may be loaded rather than built
        # Counts the times its contents were replaced (a rebuild, a load): a slot names the
        # same memory only within one incarnation.
        self.incarnation = 0
        # A versionstamp after which the table's contents were read (a build, or the load of
        # what one read): a definition of the table after it means reading it again.
        self.read_from = -1
        self.work: Path | None = None  # the text index's folder (None: in memory)
        self.ann: hnswlib.Index | None = None
        # Unit vectors by slot, for exact comparison with the few a filter admits (hnswlib's
        # get_items copies through Python lists: 50 ms for 2,000 vectors, against 0.1 ms here).
        self.vecs: np.ndarray[Any, Any] = np.zeros((0, 0), dtype=np.float32)
        self.ids: list[str | None] = []
        # Each slot's memory as recall returns it (encode_row), or None: a recall that finds
        # the index current returns these rather than reading its hits back.
        self.rows = Rows()
        self.slot_of: dict[str, int] = {}
        # Filter masks by the filters' values, for recalls with the same filters while the
        # index stands still (any change empties it).
        self.masks: dict[Hashable, np.ndarray[Any, Any]] = {}
        self.codes: dict[str, int] = {}
        self.tags: dict[int, set[int]] = {}
        self.vector_hash: dict[int, int] = {}
        n = 1024
        self.cols: dict[str, np.ndarray[Any, Any]] = {
            name: np.full(n, fill, dtype=dtype) for name, (fill, dtype) in _COLUMNS.items()
        }
        self.writer = None
        self.text_dirty = False
        if text:
            self._open_text(None)

    def reset(self) -> None:
        """Empty it, to be built again from the table (not loaded: what is saved stays until
        the rebuild publishes its own)."""
        self.drop_text()
        fresh = DerivedIndex(self.path, owner=self.owner, text=False)
        keep = {"lock", "identity", "incarnation"}
        self.__dict__.update({k: v for k, v in fresh.__dict__.items() if k not in keep})
        self.incarnation += 1
        self.versionstamp = -1
        self.loadable = False

    # -- the parts ---------------------------------------------------------------------------

    def _open_text(self, source: Path | None) -> None:
        """Open the text index: a working copy of ``source`` (a saved generation's), or empty.

        An owner's working copy lives beside the saved generations; another session's copy
        of a saved one in a private folder elsewhere; an index that is never saved in memory."""
        self.drop_text()
        where: Path | None = None
        if self.path is not None and (self.owner or source is not None):
            try:
                if self.owner:
                    where = self.path / f"work-{new_token()}"
                    self.path.mkdir(parents=True, exist_ok=True)
                else:
                    where = scratch_folder() / "text"
                working_copy(source, where)
            except OSError as exc:
                if source is not None:
                    raise
                log.warning("cannot keep the recall index beside the store (%s)", exc)
                where = None
        if where is not None:
            self.text = tantivy.Index(_text_schema(), path=str(where), reuse=source is not None)
        else:
            self.text = tantivy.Index(_text_schema())
        self.work = where
        self.text.register_tokenizer("memory", text_analyzer())
        self.analyzer = text_analyzer()
        self.writer = self.text.writer(heap_size=50_000_000, num_threads=1)
        self.text_dirty = False

    def drop_text(self) -> None:
        """Let go of the text index (its writer's lock first) and remove its working copy."""
        self.writer = None
        work, self.work = self.work, None
        if work is not None:
            # A private copy's folder goes with it.
            shutil.rmtree(work if self.owner else work.parent, ignore_errors=True)

    def _grow(self, need: int) -> None:
        size = len(self.cols["alive"])
        if need <= size:
            return
        new = max(need, size * 2)
        for name, (fill, dtype) in _COLUMNS.items():
            col = np.full(new, fill, dtype=dtype)
            col[:size] = self.cols[name]
            self.cols[name] = col
        if self.ann is not None and self.ann.get_max_elements() < new:
            self.ann.resize_index(new)
        if self.dim:
            vecs = np.zeros((new, self.dim), dtype=np.float32)
            vecs[: len(self.vecs)] = self.vecs
            self.vecs = vecs

    def _code(self, value: str | None) -> int:
        if value is None:
            return _NO_CODE
        code = self.codes.get(value)
        if code is None:
            code = self.codes[value] = len(self.codes)
        return code

    def code_of(self, value: str) -> int:
        """The code of a filter's value: one no memory has if it is unknown."""
        return self.codes.get(value, _UNKNOWN)

    def _new_ann(self, dim: int) -> None:
        self.dim = dim
        self.ann = hnswlib.Index(space="cosine", dim=dim)
        self.ann.init_index(
            max_elements=max(len(self.cols["alive"]), 1024), ef_construction=_HNSW_EFC, M=_HNSW_M
        )
        self.ann.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
        self.vecs = np.zeros((len(self.cols["alive"]), dim), dtype=np.float32)
        self.cols["vector"][:] = False
        self.vector_hash.clear()

    # -- applying changes --------------------------------------------------------------------

    def apply(self, records: Iterable[dict[str, Any]], deleted: Iterable[str] = ()) -> int:
        """Apply whole records (created or updated) and deletions; return how many changes."""
        count = 0
        self.masks.clear()
        adds: list[tuple[int, list[float]]] = []
        for key in deleted:
            self._delete(key)
            count += 1
        for record in records:
            count += 1
            vector = self._upsert(record)
            if vector is not None:
                adds.append(vector)
        if adds:
            dims = {len(v) for _, v in adds}
            if self.ann is None or len(dims) > 1 or dims != {self.dim}:
                # A new space (re-embed): the vectors of the old one were cleared with it.
                self._new_ann(max(dims, key=lambda d: sum(len(v) == d for _, v in adds)))
                adds = [(s, v) for s, v in adds if len(v) == self.dim]
            assert self.ann is not None
            slots = np.fromiter((s for s, _ in adds), dtype=np.int64, count=len(adds))
            vectors = np.asarray([v for _, v in adds], dtype=np.float32)
            self.ann.add_items(vectors, slots)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            norms[norms == 0] = 1.0
            self.vecs[slots] = vectors / norms
            self.cols["vector"][slots] = True
        self.unsaved += count
        return count

    def _delete(self, key: str) -> None:
        slot = self.slot_of.pop(key, None)
        if slot is None:
            return
        self.ids[slot] = None
        self.rows[slot] = None
        self.cols["alive"][slot] = False
        if self.cols["vector"][slot]:
            assert self.ann is not None
            self.ann.mark_deleted(slot)
            self.cols["vector"][slot] = False
        self.vector_hash.pop(slot, None)
        self.writer.delete_documents_by_term("slot", slot)
        self.text_dirty = True

    def _upsert(self, r: dict[str, Any]) -> tuple[int, list[float]] | None:
        """Record ``r``'s columns; return (slot, vector) when its vector must be (re)indexed."""
        key = _key(r["id"])
        assert key is not None
        slot = self.slot_of.get(key)
        cols = self.cols
        if slot is None:
            slot = len(self.ids)
            self._grow(slot + 1)
            self.ids.append(key)
            self.rows.append(None)
            self.slot_of[key] = slot
            cols["alive"][slot] = True
            cols["scope"][slot] = self._code(r.get("scope"))
            cols["kind"][slot] = self._code(r.get("kind"))
            cols["key"][slot] = self._code(r.get("key"))
            cols["agent"][slot] = self._code(_key(r.get("agent")))
            cols["commit"][slot] = self._code(_key(r.get("commit")))
            cols["created"][slot] = ns(r.get("created_at"))
            cols["valid_from"][slot] = ns(r.get("valid_from"))
            for tag in r.get("tags") or ():
                self.tags.setdefault(self._code(tag), set()).add(slot)
            # Replays are idempotent: a document for this slot from before a crash goes first.
            self.writer.delete_documents_by_term("slot", slot)
            text = analysable(r.get("content") or "")
            self.writer.add_document(tantivy.Document(content=text, slot=slot))
            self.text_dirty = True
        cols["valid_until"][slot] = ns(r.get("valid_until"))
        cols["invalidated"][slot] = ns(r.get("invalidated_at"))
        self.rows[slot] = encode_row({f: r[f] for f in _ROW_FIELDS if f in r})
        stored = r.get("embedding")
        if stored is None:
            stored = r.get("embedding_stash")
        if stored is None:
            if cols["vector"][slot]:
                assert self.ann is not None
                self.ann.mark_deleted(slot)
                cols["vector"][slot] = False
                self.vector_hash.pop(slot, None)
            return None
        # CBOR bytes since schema 019 (an array before: a feed's older changes, replayed). The
        # fingerprint is saved with the index, so it must not be salted per process as hash()
        # of bytes is.
        raw = stored if isinstance(stored, bytes) else cbor2.dumps(list(stored))
        fingerprint = int.from_bytes(
            hashlib.blake2b(raw, digest_size=8).digest(), "little", signed=True
        )
        if cols["vector"][slot] and self.vector_hash.get(slot) == fingerprint:
            return None  # invalidated or restored: the same vector, only the liveness moved
        self.vector_hash[slot] = fingerprint
        return slot, list(vector_of(stored))

    def commit_text(self) -> None:
        if self.text_dirty:
            self.writer.commit()
            self.text.reload()
            self.text_dirty = False

    # -- reading -----------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return len(self.ids)

    def status(self) -> IndexStatus:
        return IndexStatus(
            origin=self.origin,
            memories=len(self.slot_of),
            vectors=int(self.cols["vector"][: self.size].sum()),
            versionstamp=self.versionstamp,
            caught_up=self.caught_up,
            path=self.path if self.owner else None,
            build_s=self.build_s,
        )

    def nearest(
        self, query: np.ndarray[Any, Any], mask: np.ndarray[Any, Any], n: int, ef: int
    ) -> list[tuple[int, float]]:
        """The ``n`` admitted slots nearest ``query`` (cosine similarity), best first.

        Exact over the admitted vectors when they are few; otherwise the graph, asked for more
        as the filter admits less, until ``n`` admitted are found or the graph has been asked
        for every vector, then exact."""
        if self.ann is None or len(query) != self.dim:
            return []
        vectors = self.cols["vector"][: self.size]
        usable = mask & vectors
        # Counted, not listed: listing 100k admitted slots costs 75 us, counting them 11.
        total = int(np.count_nonzero(usable))
        if total == 0:
            return []
        n = min(n, total)
        if total <= _EXACT_MAX:
            return self._exact(query, np.flatnonzero(usable), n)
        fraction = total / max(1, int(np.count_nonzero(vectors)))
        want = max(n, int(n / fraction * 1.5) + 1)
        # The graph while it is asked for a small part of what it holds; past that, comparing
        # the admitted vectors costs less (about 1 us each) and is exact.
        while want < total and want * 8 < self.size:
            self.ann.set_ef(max(ef, want))
            try:
                labels, distances = self.ann.knn_query(query, k=want)
            except RuntimeError:  # fewer reachable than asked for: compare them all
                break
            keep = mask[labels[0]]
            found = [
                (int(s), 1.0 - float(d))
                for s, d, ok in zip(labels[0], distances[0], keep, strict=True)
                if ok
            ]
            if len(found) >= n:
                return found[:n]
            want *= 4
        return self._exact(query, np.flatnonzero(usable), n)

    def _exact(
        self, query: np.ndarray[Any, Any], admitted: np.ndarray[Any, Any], n: int
    ) -> list[tuple[int, float]]:
        assert self.ann is not None
        found: list[tuple[int, float]] = []
        q = query / (np.linalg.norm(query) or 1.0)
        for start in range(0, len(admitted), _EXACT_CHUNK):
            part = admitted[start : start + _EXACT_CHUNK]
            sims = self.vecs[part] @ q
            top = np.argpartition(-sims, min(n, len(sims)) - 1)[:n] if len(sims) > n else None
            pick = range(len(sims)) if top is None else top
            found.extend((int(part[i]), float(sims[i])) for i in pick)
            found.sort(key=lambda x: -x[1])
            del found[n:]
        return found

    def kept(self, slots: Sequence[int]) -> list[dict[str, Any]] | None:
        """The rows kept for ``slots``, as a read of them would return them; ``None`` if one
        is not kept (its record held a value :func:`encode_row` does not keep)."""
        rows = [self.rows[s] for s in slots]
        if any(r is None for r in rows):
            return None
        kept = [decode_row(r) for r in rows if r is not None]
        for slot, row in zip(slots, kept, strict=True):
            if not isinstance(row, dict) or _key(row.get("id")) != self.ids[slot]:
                raise Broken(f"the row kept for slot {slot} is another memory's")
        return kept

    def terms(self, text: str) -> list[str]:
        return list(dict.fromkeys(self.analyzer.analyze(analysable(text))))

    def matching(
        self, terms: Sequence[str], mask: np.ndarray[Any, Any], n: int, *, every: bool
    ) -> list[tuple[int, float]]:
        """The ``n`` best BM25 matches among admitted slots: of every term, or of any."""
        if not terms:
            return []
        schema = self.text.schema
        occur = tantivy.Occur.Must if every else tantivy.Occur.Should
        query = tantivy.Query.boolean_query(
            [(occur, tantivy.Query.term_query(schema, "content", t)) for t in terms]
        )
        searcher = self.text.searcher()
        want = n
        while True:
            result = searcher.search(query, limit=want, count=True)
            hits = result.hits
            slots = searcher.fast_field_values("slot", [a for _, a in hits]) if hits else []
            found = [
                (int(s), float(score))
                for (score, _), s in zip(hits, slots, strict=True)
                if s is not None and int(s) < len(mask) and mask[int(s)]
            ]
            total = int(getattr(result, "count", 0) or 0)  # the stubs omit it
            if len(found) >= n or len(hits) >= total or len(hits) < want:
                return found[:n]
            want *= 4

    # -- persistence -------------------------------------------------------------------------

    def write(self, identity: Identity) -> Path:
        """Write the index as a new generation of its database's folder, named by
        ``identity`` (whose epoch is new), and publish it; return where it is."""
        assert self.path is not None
        assert self.work is not None
        self.commit_text()
        n = self.size
        meta = {
            "versionstamp": self.versionstamp,
            "read_from": self.read_from,
            "dim": self.dim,
            "slots": n,
            "codes": list(self.codes),
        }
        return write_generation(self.path, identity, meta, self._write_files)

    def _write_files(self, into: Path) -> None:
        n = self.size
        columns: dict[str, Any] = {k: v[:n] for k, v in self.cols.items()}
        # Flat arrays rather than JSON: a warm open of 100k memories reads them in
        # milliseconds (their JSON took a quarter of a second to parse).
        # Memory keys are 64 hex digits (the schema checks them): a line each, "" for a gap.
        (into / "ids.txt").write_text("\n".join(k or "" for k in self.ids))
        pairs = [(code, slot) for code, slots in self.tags.items() for slot in slots]
        columns["tags"] = np.array(pairs, dtype=np.int64).reshape(-1, 2)  # (tag code, slot)
        blob, columns["row_ends"] = self.rows.packed()
        (into / "rows.bin").write_bytes(blob)
        columns["hash_slots"] = np.fromiter(self.vector_hash, dtype=np.int64)
        columns["hash_values"] = np.fromiter(self.vector_hash.values(), dtype=np.int64)
        np.savez(into / "columns.npz", **columns)
        if self.ann is not None:
            self.ann.save_index(str(into / "vectors.hnsw"))
            np.save(into / "vectors.npy", self.vecs[:n])
        assert self.work is not None
        working_copy(self.work, into / "text")

    @classmethod
    def load(cls, path: Path, identity: Identity, *, owner: bool) -> DerivedIndex:
        """The generation saved in ``path`` that ``identity`` names, once its manifest and
        every file check out; :class:`Unusable` if it is absent or any check fails."""
        gen, meta = read_generation(path, identity)
        index = cls(path, owner=owner, text=False)
        try:
            index._read(gen, meta)
        except Unusable:
            index.drop_text()
            raise
        except BaseException as exc:
            index.drop_text()
            if not _is_library_failure(exc):
                raise
            raise Unusable(f"{type(exc).__name__}: {exc}") from None
        index.identity = identity
        return index

    def _read(self, gen: Path, meta: dict[str, Any]) -> None:
        self.versionstamp = int(meta["versionstamp"])
        self.read_from = int(meta["read_from"])
        self.origin = "loaded"
        n = int(meta["slots"])
        with np.load(gen / "columns.npz", allow_pickle=False) as saved:
            text = (gen / "ids.txt").read_text()
            keys = text.split("\n") if n else []
            if len(keys) != n:
                raise Unusable("ids and slots differ in number")
            self.ids = [k or None for k in keys]
            # Room for the saved slots exactly (at least 1,024), so that the saved vectors
            # are used as read rather than copied again; the first new memory grows it.
            room = max(n, 1024)
            self.cols = {}
            for name, (fill, dtype) in _COLUMNS.items():
                col = np.full(room, fill, dtype=dtype)
                col[:n] = saved[name]
                self.cols[name] = col
            for code, slot in saved["tags"].tolist():
                self.tags.setdefault(code, set()).add(slot)
            self.rows = Rows((gen / "rows.bin").read_bytes(), saved["row_ends"])
            if len(self.rows) != n:
                raise Unusable("rows and ids differ in number")
            self.vector_hash = dict(
                zip(saved["hash_slots"].tolist(), saved["hash_values"].tolist(), strict=True)
            )
        self.slot_of = dict(zip(keys, range(n), strict=True))
        self.slot_of.pop("", None)
        self.codes = {c: i for i, c in enumerate(meta["codes"])}
        self.dim = int(meta["dim"])
        if self.dim:
            self.ann = hnswlib.Index(space="cosine", dim=self.dim)
            self.ann.load_index(str(gen / "vectors.hnsw"), max_elements=room)
            self.ann.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
            # Read, not mapped: after a load nothing of the generation is used, so a file
            # damaged or truncated while the store is open cannot reach recall (a truncated
            # mapping faults the process).
            vecs = np.load(gen / "vectors.npy", allow_pickle=False)
            if vecs.shape != (n, self.dim):
                raise Unusable(f"vectors of shape {vecs.shape}, not {(n, self.dim)}")
            if room == n:
                self.vecs = vecs
            else:
                self.vecs = np.zeros((room, self.dim), dtype=np.float32)
                self.vecs[:n] = vecs
        self._open_text(gen / "text")

    async def aclose(self, db: Any = None) -> None:
        """When its store lets go of the connection (``db``, still open): save (if it has a
        place and its session may write there), and let go of the text index, for the next
        store on these files (in this process or another) to load the index rather than
        rebuild it."""
        async with self.lock:
            if db is not None and (self.unsaved or self.text_dirty):
                await publish(db, self)
            self.drop_text()


_EXACT_MAX: Final = 1_000
_EXACT_CHUNK: Final = 50_000

# name -> (fill for an unused slot, dtype)
_COLUMNS: Final[dict[str, tuple[Any, Any]]] = {
    "alive": (False, np.bool_),
    "vector": (False, np.bool_),
    "scope": (_NO_CODE, np.int32),
    "kind": (_NO_CODE, np.int32),
    "key": (_NO_CODE, np.int32),
    "agent": (_NO_CODE, np.int32),
    "commit": (_NO_CODE, np.int32),
    "created": (_NO_TIME, np.int64),
    "valid_from": (_NO_TIME, np.int64),
    "valid_until": (_NO_TIME, np.int64),
    "invalidated": (_NO_TIME, np.int64),
}


# -- attaching, building and catching up -----------------------------------------------------


def _place(db: Any) -> Path | None:
    settings: Any = getattr(db, "settings", None)
    path = getattr(settings, "path", None)
    if settings is None or path is None:
        return None
    return database_folder(Path(path), settings.namespace, settings.database)


def _may_write(db: Any) -> bool:
    """Whether ``db``'s session has the owner's rights over its database (so over the files
    of its recall index): an embedded store opened without credentials, a root user, an
    OWNER. Checked before any file is touched."""
    who: Any = getattr(db, "signed_in_as", None)
    if who is None:
        return False
    return bool(who.kind in ("anonymous", "root") or who.role == "OWNER")


def derived_index(db: Any) -> DerivedIndex | None:
    """The derived index attached to ``db``'s connection, made on first use (empty: the first
    catch-up loads or builds it); ``None`` when ``db`` cannot hold one (an executor that is
    not a store)."""
    attached = getattr(db, "attached", None)
    if attached is None:
        return None

    owner = _may_write(db)

    def make() -> DerivedIndex:
        index = DerivedIndex(_place(db), owner=owner, text=False)
        index.versionstamp = -1  # not loaded or built yet
        return index

    # Stores of several sign-ins can share a connection: sessions with the owner's rights
    # share the index that writes the files, the others one that never does.
    name = "memory-recall-index" if owner else "memory-recall-index (read-only)"
    index: DerivedIndex = attached(name, make)
    return index


class Broken(Exception):
    """The index failed in a way that says its state is not to be trusted: it is rebuilt."""


def _is_library_failure(exc: BaseException) -> bool:
    """Whether ``exc`` came from the index's own state or libraries (numpy, zipfile, hnswlib,
    tantivy, cbor2) rather than from the database or the caller. A panic in a library's
    Rust code arrives as ``pyo3_runtime.PanicException``, a ``BaseException``."""
    if isinstance(exc, StoreError | Stale | FeedUnavailable):
        return False
    if isinstance(exc, Exception):
        return True
    return type(exc).__name__ == "PanicException"


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Turn a failure of the index's libraries inside the block into :class:`Broken`."""
    try:
        yield
    except Broken:
        raise
    except BaseException as exc:
        if not _is_library_failure(exc):
            raise
        raise Broken(f"{type(exc).__name__}: {exc}") from exc


# -- the database's identity and the saved generations --------------------------------------

_IDENTITY = "SELECT database, epoch FROM ONLY memory_index:identity;"
# Made once; a concurrent maker's record wins (INSERT IGNORE), and is what is read back.
_NEW_IDENTITY = """
INSERT IGNORE INTO memory_index {id: memory_index:identity, database: $database, epoch: $epoch}
    RETURN NONE;
SELECT database, epoch FROM ONLY memory_index:identity;
"""
# The engine's clock, in the milliseconds versionstamps count in (shifted by 16 bits).
_CLOCK = "RETURN time::millis(time::now());"
# Moves the epoch on to a generation just published, unless another save moved it meanwhile.
_MOVE_EPOCH = """
UPDATE memory_index:identity SET epoch = $new WHERE database = $database AND epoch = $old
    RETURN VALUE epoch;
"""


async def _identity(db: Any, *, create: bool) -> Identity | None:
    """The database's identity (made, when ``create`` and it has none yet); ``None`` if it
    has none or this session cannot read it (then no saved file is used)."""
    try:
        row = (await db.execute(_IDENTITY, idempotent=True) or [None])[0]
        if row is None and create:  # a write only the first time
            rows = await db.execute(_NEW_IDENTITY, database=new_token(), epoch=new_token())
            row = rows[-1] if rows else None
    except StoreError as exc:
        log.info("the database's recall index identity is unavailable (%s)", exc)
        return None
    return Identity.parse(row)


def _sweep_folder(index: DerivedIndex, keep: Path | None = None) -> None:
    """Remove from the database's folder everything but ``keep`` and the working copy."""
    if index.owner and index.path is not None:
        sweep(index.path, {p for p in (keep, index.work) if p is not None})


async def _restore(db: Any, index: DerivedIndex) -> bool:
    """Load the generation the database's identity names into ``index``; ``False`` (and the
    index ready to be built, under the identity an owner's save will move on) when there is
    none that may be used: absent, damaged, of another database, newer than the database's
    present, or older than its feed keeps."""
    place, owner = index.path, index.owner
    if place is None:
        return False
    identity = await _identity(db, create=owner)
    index.identity = identity
    if owner:
        settings: Any = db.settings
        await anyio.to_thread.run_sync(
            remove_legacy, legacy_folder(Path(settings.path), settings.namespace, settings.database)
        )
    if identity is None:
        return False
    # A removed table has no feed to say so: nothing saved answers for it (the build that
    # follows raises the database's own NotFoundError). The clock, in the same round trip.
    checked = await db.execute(f"SELECT VALUE id FROM memory LIMIT 0;\n{_CLOCK}", idempotent=True)
    now_ms = int(checked[-1])
    t0 = time.perf_counter()
    try:
        loaded = await anyio.to_thread.run_sync(
            lambda: DerivedIndex.load(place, identity, owner=owner)
        )
    except Unusable as exc:
        log.info("the saved recall index at %s is not used: %s; rebuilding", place, exc)
        await anyio.to_thread.run_sync(_sweep_folder, index)
        return False
    age_ms = now_ms - (loaded.versionstamp >> 16)
    why = None
    if age_ms > _MAX_AGE.total_seconds() * 1000:
        why = "it is older than the change feed keeps"
    elif age_ms < -_CLOCK_SLACK_MS:
        why = "it is newer than the database's present"
    if why is not None:
        log.info("the saved recall index at %s is not used: %s; rebuilding", place, why)
        loaded.drop_text()
        await anyio.to_thread.run_sync(_sweep_folder, index)
        return False
    loaded.build_s = time.perf_counter() - t0
    gen = place / f"gen-{identity.epoch}"
    keep = {"lock", "incarnation"}
    index.__dict__.update({k: v for k, v in loaded.__dict__.items() if k not in keep})
    index.incarnation += 1
    await anyio.to_thread.run_sync(_sweep_folder, index, gen)
    return True


async def publish(db: Any, index: DerivedIndex) -> bool:
    """Save ``index`` as a new generation and move its database's epoch on to it (call with
    ``index.lock`` held). Only where the session may write; a failure is logged and loses
    nothing (the next open catches up from the last generation, or rebuilds). Returns whether
    it was saved."""
    old = index.identity
    if not index.owner or index.path is None or index.work is None or old is None:
        return False
    new = Identity(old.database, new_token())
    try:
        gen = await anyio.to_thread.run_sync(index.write, new)
    except Exception as exc:
        log.warning("could not save the recall index at %s: %s", index.path, exc)
        return False
    try:
        moved = await db.query(
            _MOVE_EPOCH, str, database=old.database, old=old.epoch, new=new.epoch
        )
    except StoreError as exc:
        moved = []
        log.warning("could not record the saved recall index in the database: %s", exc)
    if moved != [new.epoch]:
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(gen, ignore_errors=True))
        return False
    index.identity = new
    index.unsaved = 0
    await anyio.to_thread.run_sync(_sweep_folder, index, gen)
    return True


class FeedUnavailable(Exception):
    """This session cannot read the memory table's change feed (an agent's)."""


async def _feed(
    db: Any,
    index: DerivedIndex,
    since: int,
    limit: int,
    *,
    then: str | None = None,
    **params: Any,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None, Any]:
    """A page of the feed from ``since``, the embedding space (``embedding_space:active``
    without its id; recall checks the query's dimension and a re-embed against it) and the
    result of ``then`` (a read) when given, in one round trip."""
    try:
        rows = await db.execute(
            f"SHOW CHANGES FOR TABLE memory SINCE {int(since)} LIMIT {int(limit)};\n"
            "SELECT * OMIT id FROM ONLY embedding_space:active;\n" + (then or ""),
            idempotent=True,
            **params,
        )
    except PermissionDeniedError as exc:
        raise FeedUnavailable(str(exc)) from None
    except QueryError as exc:
        if "not allowed" in str(exc).lower() or "permission" in str(exc).lower():
            raise FeedUnavailable(str(exc)) from None
        raise
    space = rows[1] if len(rows) > 1 and isinstance(rows[1], dict) else None
    out = rows[0] if rows else []
    return (out if isinstance(out, list) else []), space, (rows[2] if len(rows) > 2 else None)


class Stale(Exception):
    """The index was behind the table (or the embedding space had changed) when a read was
    checked against it: catch up (from what the look saw, :func:`catch_up`), then ask again."""

    def __init__(
        self, since: int, limit: int, entries: list[dict[str, Any]], space: dict[str, Any] | None
    ) -> None:
        super().__init__("the memory table changed since the index's versionstamp")
        self.since = since
        self.limit = limit  # the page's size in transactions: a full page may have more after
        self.entries = entries
        self.space = space


async def read_if_current(
    db: Any,
    index: DerivedIndex,
    state: tuple[int, dict[str, Any] | None],
    text: str | None,
    **params: Any,
) -> Any:
    """The result of the read ``text`` (if any), run in one round trip with a look at the
    feed: raises :class:`Stale` unless the table has not changed since ``state`` (the
    versionstamp and the embedding space that ``index`` reflected when it chose what to
    read, or what it keeps of the memories it returns, :meth:`DerivedIndex.kept`). A change
    committed after the look is one made after this read began, which a read need not see;
    every filter is in ``text``, so a memory invalidated meanwhile is still refused."""
    known, space = state
    limit = index.feed_limit
    if known < 0:
        raise Stale(known, limit, [], None)
    entries, now, result = await _feed(db, index, known + 1, limit, then=text, **params)
    if entries or now != space:
        raise Stale(known, limit, entries, now)
    return result


async def _now_versionstamp(db: Any) -> int:
    """A versionstamp at or before every change committed from now on (they are the commit's
    milliseconds shifted by 16 bits); a second early, for clocks that step."""
    ms = await db.query_required_single(_CLOCK, int, idempotent=True)
    return max(0, (int(ms) - 1000) << 16)


async def _read_page(
    db: Any, after: str, into: list[list[dict[str, Any]]], failure: list[Exception]
) -> None:
    """The build's page after ``after``, appended to ``into`` (an error to ``failure``, to be
    raised as itself rather than inside a task group's exception group)."""
    try:
        into.append(
            await db.query(_BUILD_NEXT, dict, idempotent=True, after=RecordId("memory", after))
        )
    except Exception as exc:
        failure.append(exc)


async def _build(
    db: Any, index: DerivedIndex, progress: Callable[[int], None] | None = None
) -> None:
    """Fill an empty index from the table, in pages by id, then replay the feed from before
    the first page (so changes made during the build are applied too)."""
    t0 = time.perf_counter()
    # Never before a definition of the table that made this build necessary (read_from).
    start = max(await _now_versionstamp(db), index.read_from)
    index.read_from = start  # a definition after this may not be in what the build reads
    page = await db.query(_BUILD_FIRST, dict, idempotent=True)
    while page:
        after = _key(page[-1]["id"]) if len(page) == _BUILD_PAGE else None
        following: list[list[dict[str, Any]]] = []
        failure: list[Exception] = []
        # The engine reads the next page while this one is applied in a worker thread (the
        # graph's insertions release the GIL): a build costs about the longer of the two.
        async with anyio.create_task_group() as tg:
            if after is not None:
                tg.start_soon(_read_page, db, after, following, failure)
            try:
                await anyio.to_thread.run_sync(index.apply, page)
            except Exception as exc:
                failure.append(exc)
                tg.cancel_scope.cancel()
        if failure:
            raise failure[0]
        if progress is not None:
            progress(index.size)
        page = following[0] if following else []
    index.commit_text()
    index.versionstamp = start
    index.origin = "built" if index.size else "new"
    index.build_s = time.perf_counter() - t0
    log.info("built the recall index: %d memories in %.1fs", index.size, index.build_s)


async def _start(db: Any, index: DerivedIndex, progress: Callable[[int], None] | None) -> None:
    """Load the saved generation into an index that is neither loaded nor built, or build
    it from the table."""
    if index.loadable:
        if await _restore(db, index):
            return
    elif index.identity is None and index.owner and index.path is not None:
        index.identity = await _identity(db, create=True)  # _restore's, when it ran
    index._open_text(None)
    await _build(db, index, progress)


async def catch_up(
    db: Any,
    index: DerivedIndex,
    *,
    progress: Callable[[int], None] | None = None,
    seen: Stale | None = None,
) -> int:
    """Bring ``index`` up to the table's present: build it if it never was (or its feed has
    expired), then apply the feed since its versionstamp, starting with the page a recall's
    look already read (``seen``) if the index has not moved since. Call with ``index.lock``
    held. Raises :class:`FeedUnavailable` when this session cannot read the feed."""
    if index.versionstamp < 0:
        # Reading the feed first: a session that cannot is told before a build it cannot use.
        _, index.space, _ = await _feed(db, index, 0, limit=1)
        await _start(db, index, progress)
    applied = 0
    if seen is not None and seen.since == index.versionstamp:
        entries, index.space, limit = seen.entries, seen.space, seen.limit
    else:  # another task caught it up meanwhile: the look's page may be older than the index
        limit = index.feed_limit
        entries, index.space, _ = await _feed(db, index, index.versionstamp + 1, limit)
    while True:
        changes = sum(len(entry.get("changes", ())) for entry in entries)
        if entries:
            index.feed_limit = max(1, min(_FEED_MAX, _FEED_ROWS * len(entries) // max(1, changes)))
        pending: dict[str, dict[str, Any]] = {}
        for entry in entries:
            for change in entry.get("changes", ()):
                if "update" in change:
                    record = change["update"]
                    key = _key(record.get("id"))
                    if key is not None:
                        pending.pop(key, None)  # its last state is what counts
                        pending[key] = record
                elif "delete" in change:
                    key = _key(change["delete"].get("id"))
                    if key is not None:
                        # In order: what came before the deletion, then the deletion.
                        applied += index.apply(pending.values())
                        pending.clear()
                        applied += index.apply((), (key,))
                elif "define_table" in change and int(entry["versionstamp"]) > index.read_from:
                    # The table was defined again after the index read it (removed and made
                    # anew, or redefined): what it holds is read again, not followed.
                    log.info("the memory table was defined again; rebuilding the recall index")
                    index.reset()
                    # The feed keeps the removed table's changes: none before this is replayed.
                    index.read_from = int(entry["versionstamp"])
                    return await catch_up(db, index, progress=progress)
        applied += index.apply(pending.values())
        if entries:
            index.versionstamp = int(entries[-1]["versionstamp"])
        if len(entries) < limit:
            break
        limit = index.feed_limit
        entries, index.space, _ = await _feed(db, index, index.versionstamp + 1, limit)
    index.commit_text()
    index.caught_up += applied
    if index.origin == "new" and index.size:
        index.origin = "built"
    if index.unsaved >= _SAVE_AFTER:
        await publish(db, index)
    return applied
