"""The recall index in memory and its search: columns of what recall filters on (a mask of
exactly what the database admits), an HNSW graph of the vectors (hnswlib), a BM25 text index
(tantivy), and each memory's row as a read returns it (:mod:`._rows`).

Nothing here talks to the database: :mod:`._feed` fills and follows the index, :mod:`._persist`
saves and loads it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import anyio
import cbor2
import hnswlib
import numpy as np
import tantivy

from ..._types import RecordId
from .._models import FIELDS, EmbeddingSpace, IndexStatus, vector_of
from ._analysis import analysable, text_analyzer, text_schema
from ._failures import Broken
from ._files import Identity, new_token, scratch_folder, working_copy
from ._rows import Rows, decode_row, encode_row
from ._times import NO_TIME, Far, held, ns, time_filters, time_mask
from ._vectors import SavedVectors

__all__ = ["COLUMNS", "NO_CODE", "DerivedIndex", "code", "code_of", "key_of"]

log = logging.getLogger("surreal_store.memory")

_HNSW_M: Final = 16
# Effort of the graph's construction: it reaches the recall of a larger effort at the default
# search effort, in less build time (docs/design.md, "Measurements").
_HNSW_EFC: Final = 100
NO_CODE: Final = -1
"""A column's code where the record has no value."""
_UNKNOWN: Final = -2  # a filter's value that no record has
# What recall returns of a memory, kept per slot (the feed's updates carry the whole record).
_ROW_FIELDS: Final = tuple(name.strip() for name in FIELDS.split(","))
_MASKS: Final = 16  # filter masks kept while the index stands still


def key_of(value: Any) -> str | None:
    """A memory's (or a filter's) key as the index's columns keep it."""
    if value is None:
        return None
    if isinstance(value, RecordId):
        # A filter names records by string keys: `agent:1` (a number) must not pass for
        # `agent:⟨1⟩`, so other keys get a code no string key has (the mask is exact).
        return value.key if type(value.key) is str else f"\0{value.key!r}"
    return str(value)


def code(codes: dict[str, int], value: str | None) -> int:
    """``value``'s code in ``codes`` (the values of an index's columns, each numbered in the
    order first seen), given now if it is new; :data:`NO_CODE` for ``None``."""
    if value is None:
        return NO_CODE
    found = codes.get(value)
    if found is None:
        found = codes[value] = len(codes)
    return found


def code_of(codes: dict[str, int], value: str) -> int:
    """The code of a filter's value in ``codes``: one no record has if it is unknown."""
    return codes.get(value, _UNKNOWN)


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
        # Taken by every recall, briefly and mostly free: acquiring it yields to the event
        # loop only when it is held (a yield each time costs a recall a turn of the loop).
        self.lock = anyio.Lock(fast_acquire=True)
        self.versionstamp = 0
        self.origin: Literal["built", "loaded", "new"] = "new"
        self.caught_up = 0
        self.build_s = 0.0
        self.unsaved = 0
        self.feed_limit = 16  # transactions per page of the feed (see _FEED_ROWS)
        self.dim = 0
        self.space: dict[str, Any] | None = None  # embedding_space:active at the last catch-up
        # `space` and its model (space_model): a catch-up replaces the dict, never changes it.
        self._space_model: tuple[dict[str, Any], EmbeddingSpace] | None = None
        # Whether the space has its own change feed (schema 030; None until a start checks):
        # then a look learns of its changes from the database's feed rather than reading it.
        self.space_feed: bool | None = None
        # (versionstamp, the store's write mark before the look, space) of the last look that
        # found no change after that versionstamp: while the mark stays, none has happened.
        self.quiet: tuple[int, int, dict[str, Any] | None] | None = None
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
        # get_items copies through Python lists, far slower than slicing these): see `vecs`.
        self._vecs: np.ndarray[Any, Any] = np.zeros((0, 0), dtype=np.float32)
        # Where a loaded index's saved vectors are, until first used (`vecs`).
        self.saved_vecs: SavedVectors | None = None
        self.ids: list[str | None] = []
        # Each slot's memory as recall returns it (encode_row), or None: a recall that finds
        # the index current returns these rather than reading its hits back.
        self.rows = Rows()
        self.slot_of: dict[str, int] = {}
        # Filter masks by the filters' values, for recalls with the same filters while the
        # index stands still (any change empties it).
        self.masks: dict[Hashable, np.ndarray[Any, Any]] = {}
        # The counts nearest() takes of a mask, by the mask (emptied with the masks).
        self.counted: dict[tuple[int, int, int], tuple[Any, Any, int, int]] = {}
        self.codes: dict[str, int] = {}
        self.tags: dict[int, set[int]] = {}
        self.vector_hash: dict[int, int] = {}
        self.far: Far = {}  # the exact times the time columns hold stand-ins for
        n = 1024
        self.cols: dict[str, np.ndarray[Any, Any]] = {
            name: np.full(n, fill, dtype=dtype) for name, (fill, dtype) in COLUMNS.items()
        }
        self.writer = None
        self.text_dirty = False
        if text:
            self.open_text(None)

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

    def open_text(self, source: Path | None) -> None:
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
            self.text = tantivy.Index(text_schema(), path=str(where), reuse=source is not None)
        else:
            self.text = tantivy.Index(text_schema())
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

    @property
    def vecs(self) -> np.ndarray[Any, Any]:
        """The unit vectors by slot. A loaded index reads its saved ones when they are first
        used (a search the graph leaves to exact comparison, a change, a save), not at the
        load: most recalls never need them. :class:`Broken` if the file is not what its
        manifest says."""
        saved = self.saved_vecs
        if saved is not None:
            self._vecs = saved.read()
            self.saved_vecs = None
        return self._vecs

    @vecs.setter
    def vecs(self, value: np.ndarray[Any, Any]) -> None:
        self._vecs = value
        self.saved_vecs = None

    def _grow(self, need: int) -> None:
        size = len(self.cols["alive"])
        if need <= size:
            return
        new = max(need, size * 2)
        for name, (fill, dtype) in COLUMNS.items():
            col = np.full(new, fill, dtype=dtype)
            col[:size] = self.cols[name]
            self.cols[name] = col
        if self.ann is not None and self.ann.get_max_elements() < new:
            self.ann.resize_index(new)
        if self.dim:
            vecs = np.zeros((new, self.dim), dtype=np.float32)
            vecs[: len(self.vecs)] = self.vecs
            self.vecs = vecs

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
        self.counted.clear()
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

    def _time(self, slot: int, column: str, value: Any) -> None:
        n = ns(value)
        kept = self.cols[column][slot] = held(n)
        if kept != n:
            self.far.setdefault(slot, {})[column] = n
        elif slot in self.far:
            far = self.far[slot]
            far.pop(column, None)
            if not far:
                del self.far[slot]

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
        key = key_of(r["id"])
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
            cols["scope"][slot] = code(self.codes, r.get("scope"))
            cols["kind"][slot] = code(self.codes, r.get("kind"))
            cols["key"][slot] = code(self.codes, r.get("key"))
            cols["agent"][slot] = code(self.codes, key_of(r.get("agent")))
            cols["commit"][slot] = code(self.codes, key_of(r.get("commit")))
            self._time(slot, "created", r.get("created_at"))
            self._time(slot, "valid_from", r.get("valid_from"))
            for tag in r.get("tags") or ():
                self.tags.setdefault(code(self.codes, tag), set()).add(slot)
            # Replays are idempotent: a document for this slot from before a crash goes first.
            self.writer.delete_documents_by_term("slot", slot)
            text = analysable(r.get("content") or "")
            self.writer.add_document(tantivy.Document(content=text, slot=slot))
            self.text_dirty = True
        self._time(slot, "valid_until", r.get("valid_until"))
        self._time(slot, "invalidated", r.get("invalidated_at"))
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
        # CBOR bytes (schema 019), or an array in a feed's older changes, replayed. The
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

    def space_model(self) -> EmbeddingSpace | None:
        """:attr:`space` as the model, made once per space the index reads rather than on
        every recall."""
        raw = self.space
        if raw is None:
            return None
        made = self._space_model
        if made is None or made[0] is not raw:
            made = self._space_model = (raw, EmbeddingSpace.model_validate(raw))
        return made[1]

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
        self, vector: Sequence[float], mask: np.ndarray[Any, Any], n: int, ef: int
    ) -> list[tuple[int, float]]:
        """The ``n`` admitted slots nearest ``vector`` (cosine similarity), best first.

        Exact over the admitted vectors when they are few; otherwise the graph, asked for more
        as the filter admits less, until ``n`` admitted are found or the graph has been asked
        for every vector, then exact."""
        if self.ann is None or len(vector) != self.dim:
            return []
        query = np.asarray(vector, dtype=np.float32)
        vectors = self.cols["vector"][: self.size]
        total, held = self._counts(mask, vectors)
        if total == 0:
            return []
        n = min(n, total)
        if total <= _EXACT_MAX:
            return self._exact(query, np.flatnonzero(mask & vectors), n)
        fraction = total / max(1, held)
        want = max(n, int(n / fraction * 1.5) + 1)
        # The graph while it is asked for a small part of what it holds; past that, comparing
        # the admitted vectors costs less and is exact.
        while want < total and want * 8 < self.size:
            self.ann.set_ef(max(ef, want))
            try:
                labels, distances = self.ann.knn_query(query, k=want)
            except RuntimeError:  # fewer reachable than asked for: compare them all
                break
            # As Python numbers at once: iterating numpy arrays makes a numpy scalar an item.
            slots, dists, keep = labels[0].tolist(), distances[0].tolist(), mask[labels[0]].tolist()
            found = [(s, 1.0 - d) for s, d, ok in zip(slots, dists, keep, strict=True) if ok]
            if len(found) >= n:
                return found[:n]
            want *= 4
        return self._exact(query, np.flatnonzero(mask & vectors), n)

    def _counts(self, mask: np.ndarray[Any, Any], vectors: np.ndarray[Any, Any]) -> tuple[int, int]:
        """How many slots ``mask`` admits that have a vector, and how many have one: counted,
        not listed (counting costs a fraction of listing), and kept for the same mask while
        the index stands still, so that recalls with the same filters do not pass over every
        slot again (slow once other work has taken the caches)."""
        column = self.cols["vector"]
        key = (id(mask), id(column), len(vectors))
        kept = self.counted.get(key)
        # The arrays are held with their counts, so that their ids are not reused meanwhile.
        if kept is not None and kept[0] is mask and kept[1] is column:
            return kept[2], kept[3]
        total = int(np.count_nonzero(mask & vectors))
        held = int(np.count_nonzero(vectors))
        if len(self.counted) >= _MASKS:
            self.counted.pop(next(iter(self.counted)))
        self.counted[key] = (mask, column, total, held)
        return total, held

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
            if not isinstance(row, dict) or key_of(row.get("id")) != self.ids[slot]:
                raise Broken(f"the row kept for slot {slot} is another memory's")
        return kept

    # -- filters -----------------------------------------------------------------------------

    def mask(self, values: Mapping[str, Any], *, include_invalidated: bool) -> np.ndarray[Any, Any]:
        """The slots a recall's filters (``values``, by the names of recall's filters)
        admit: exactly the memories the database admits at the index's versionstamp,
        metadata filters aside (:meth:`admit_only`). Read-only: it may be shared with recalls
        that have the same filters while the index stands still."""
        # Not a branch's history (its commits take as long to compare as the mask to compute).
        key = None if "commits" in values else (include_invalidated, repr(sorted(values.items())))
        cached = self.masks.get(key) if key is not None else None
        if cached is not None and len(cached) == self.size:
            return cached
        mask = self._new_mask(values, include_invalidated)
        mask.flags.writeable = False
        if key is not None:
            if len(self.masks) >= _MASKS:
                self.masks.pop(next(iter(self.masks)))
            self.masks[key] = mask
        return mask

    def _new_mask(self, v: Mapping[str, Any], include_invalidated: bool) -> np.ndarray[Any, Any]:
        n = self.size
        c = {name: col[:n] for name, col in self.cols.items()}
        mask = c["alive"].copy()
        if "scope" in v:
            mask &= c["scope"] == code_of(self.codes, v["scope"])
        if "kinds" in v:
            mask &= np.isin(c["kind"], [code_of(self.codes, x) for x in v["kinds"]])
        if "key" in v:
            mask &= c["key"] == code_of(self.codes, v["key"])
        if "agent" in v:
            mask &= c["agent"] == code_of(self.codes, str(v["agent"].key))
        if "commits" in v:
            mask &= np.isin(c["commit"], [code_of(self.codes, str(x.key)) for x in v["commits"]])
        for tag in v.get("tags", ()):
            has = np.zeros(n, dtype=np.bool_)
            slots = self.tags.get(code_of(self.codes, tag))
            if slots:
                has[np.fromiter(slots, dtype=np.int64, count=len(slots))] = True
            mask &= has
        timed = time_filters(v, include_invalidated)
        if "as_of" not in v and not include_invalidated:
            mask &= c["invalidated"] == NO_TIME
        if timed:
            mask &= time_mask(c, self.far, timed, n)
        return mask

    def admit_only(self, mask: np.ndarray[Any, Any], keys: Iterable[str]) -> np.ndarray[Any, Any]:
        """``mask`` narrowed to the memories named by ``keys`` (those the database admits)."""
        admitted = np.zeros(len(mask), dtype=np.bool_)
        slots = [self.slot_of[k] for k in keys if k in self.slot_of]
        if slots:
            admitted[np.asarray(slots, dtype=np.int64)] = True
        return mask & admitted

    def widen(self, mask: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """``mask`` over every slot the index has now: slots taken in since are left out."""
        if len(mask) >= self.size:
            return mask
        return np.concatenate([mask, np.zeros(self.size - len(mask), dtype=np.bool_)])

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


_EXACT_MAX: Final = 1_000
_EXACT_CHUNK: Final = 50_000

# name -> (fill for an unused slot, dtype)
COLUMNS: Final[dict[str, tuple[Any, Any]]] = {
    "alive": (False, np.bool_),
    "vector": (False, np.bool_),
    "scope": (NO_CODE, np.int32),
    "kind": (NO_CODE, np.int32),
    "key": (NO_CODE, np.int32),
    "agent": (NO_CODE, np.int32),
    "commit": (NO_CODE, np.int32),
    "created": (NO_TIME, np.int64),
    "valid_from": (NO_TIME, np.int64),
    "valid_until": (NO_TIME, np.int64),
    "invalidated": (NO_TIME, np.int64),
}
