"""The entity index in memory and its search: the graph's entities (schema 022), each with
its scope, type and liveness as columns, its own words (name, aliases, summary) as the set of
terms the schema's ``memory_text`` analyzer makes of them, and its own embedding.

It answers what ``graph.search_entities`` asks of the engine, the same way: the entities of a
scope (of some types) sharing the most distinct terms with the query's, ties by key; and
those whose embedding (of the query's dimension) is nearest the query vector by cosine. Text
matches are counted exactly; vectors are compared exactly in single precision, and the few
nearest are compared again by the engine (:mod:`._entity_feed`), so that near ties order as
the engine orders them.

Nothing here talks to the database: :mod:`._entity_feed` fills it and follows the entity
table's change feed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import anyio
import cbor2
import numpy as np

from ._analysis import analysable, text_analyzer
from ._failures import Broken
from ._index import NO_CODE, code, code_of, key_of

__all__ = ["ENTITY_INDEX_FIELDS", "EntityIndex"]

ENTITY_INDEX_FIELDS: Final = "id, scope, type, name, aliases, summary, retracted_at, embedding"
"""What the index keeps of an entity (a build reads these; the feed carries whole records)."""


def entity_words(record: dict[str, Any]) -> str:
    """An entity's own words as the engine's search joins them: name, aliases, summary."""
    aliases = record.get("aliases") or []
    return f"{record.get('name') or ''} {' '.join(aliases)} {record.get('summary') or ''}"


def _vector(stored: Any) -> np.ndarray[Any, Any] | None:
    """An entity's stored embedding (CBOR bytes, schema 022; an array before) as floats."""
    if stored is None:
        return None
    if isinstance(stored, bytes | bytearray):
        fast = _doubles(bytes(stored))
        if fast is not None:
            return fast
        stored = cbor2.loads(stored)
    if not isinstance(stored, list) or not stored:
        return None
    return np.asarray(stored, dtype=np.float32)


_DOUBLE: Final = np.dtype([("head", "u1"), ("value", ">f8")])


def _doubles(data: bytes) -> np.ndarray[Any, Any] | None:
    """A CBOR array of doubles (how an embedding is written) read at once; ``None`` for any
    other encoding (read by cbor2)."""
    if not data or data[0] >> 5 != 4:
        return None
    info = data[0] & 31
    if info < 24:
        count, start = info, 1
    elif 24 <= info <= 27:
        width = 1 << (info - 24)
        count, start = int.from_bytes(data[1 : 1 + width], "big"), 1 + width
    else:
        return None
    if count == 0 or len(data) != start + 9 * count:
        return None
    items = np.frombuffer(data, dtype=_DOUBLE, offset=start)
    if not (items["head"] == 0xFB).all():
        return None
    return items["value"].astype(np.float32)


class _Block:
    """The vectors of one dimension: unit rows, and the slot each row belongs to (-1: free)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.mat: np.ndarray[Any, Any] = np.zeros((64, dim), dtype=np.float32)
        self.owner: np.ndarray[Any, Any] = np.full(64, -1, dtype=np.int64)
        self.used = 0
        self.free: list[int] = []

    def put(self, slot: int, v: np.ndarray[Any, Any]) -> int:
        if self.free:
            row = self.free.pop()
        else:
            if self.used == len(self.owner):
                self.mat = np.concatenate([self.mat, np.zeros_like(self.mat)])
                self.owner = np.concatenate([self.owner, np.full(len(self.owner), -1)])
            row, self.used = self.used, self.used + 1
        norm = float(np.linalg.norm(v))
        self.mat[row] = v / (norm or 1.0)
        self.owner[row] = slot
        return row

    def drop(self, row: int) -> None:
        self.owner[row] = -1
        self.free.append(row)


class EntityIndex:
    """The entity index of one database, attached to its store's connection (in memory)."""

    def __init__(self) -> None:
        self.lock = anyio.Lock(fast_acquire=True)
        self.versionstamp = -1  # not built yet
        self.read_from = -1  # the versionstamp after which the last build read the table
        self.feed_limit = 16
        self.followed_at = 0.0  # time.monotonic() of the last look at the feed
        self.analyzer = text_analyzer()
        self.ids: list[str] = []
        self.slot_of: dict[str, int] = {}
        self.codes: dict[str, int] = {}
        self.alive: np.ndarray[Any, Any] = np.zeros(0, dtype=np.bool_)
        self.scope: np.ndarray[Any, Any] = np.zeros(0, dtype=np.int32)
        self.type: np.ndarray[Any, Any] = np.zeros(0, dtype=np.int32)
        self.terms: list[frozenset[str]] = []
        self.postings: dict[str, set[int]] = {}
        self.blocks: dict[int, _Block] = {}
        self.place: dict[int, tuple[int, int]] = {}  # slot -> (dimension, row)

    def reset(self) -> None:
        """Empty it, to be built again from the table."""
        lock = self.lock
        self.__init__()  # type: ignore[misc]
        self.lock = lock

    @property
    def size(self) -> int:
        return len(self.ids)

    def analyse(self, text: str) -> list[str]:
        """``text``'s distinct terms, as ``search::analyze('memory_text', text)`` makes them."""
        return list(dict.fromkeys(self.analyzer.analyze(analysable(text))))

    # -- applying changes --------------------------------------------------------------------

    def apply(self, records: Iterable[dict[str, Any]], deleted: Iterable[str] = ()) -> int:
        """Apply whole entity records (created or updated) and deletions (keys); idempotent."""
        count = 0
        for key in deleted:
            self._delete(key)
            count += 1
        for record in records:
            self._upsert(record)
            count += 1
        return count

    def _slot(self, key: str) -> int:
        slot = self.slot_of.get(key)
        if slot is not None:
            return slot
        slot = len(self.ids)
        if slot == len(self.alive):
            grow = max(1024, slot)
            self.alive = np.concatenate([self.alive, np.zeros(grow, dtype=np.bool_)])
            self.scope = np.concatenate([self.scope, np.full(grow, NO_CODE, dtype=np.int32)])
            self.type = np.concatenate([self.type, np.full(grow, NO_CODE, dtype=np.int32)])
        self.ids.append(key)
        self.terms.append(frozenset())
        self.slot_of[key] = slot
        return slot

    def _unindex(self, slot: int) -> None:
        for term in self.terms[slot]:
            held = self.postings.get(term)
            if held is not None:
                held.discard(slot)
                if not held:
                    del self.postings[term]
        self.terms[slot] = frozenset()
        placed = self.place.pop(slot, None)
        if placed is not None:
            self.blocks[placed[0]].drop(placed[1])

    def _delete(self, key: str) -> None:
        slot = self.slot_of.get(key)
        if slot is None:
            return
        self._unindex(slot)
        self.alive[slot] = False

    def _upsert(self, r: dict[str, Any]) -> None:
        key = key_of(r.get("id"))
        if key is None:
            return
        slot = self._slot(key)
        self._unindex(slot)
        self.alive[slot] = r.get("retracted_at") is None
        self.scope[slot] = code(self.codes, str(r.get("scope") or ""))
        self.type[slot] = code(self.codes, str(r.get("type") or ""))
        terms = frozenset(self.analyse(entity_words(r)))
        self.terms[slot] = terms
        for term in terms:
            self.postings.setdefault(term, set()).add(slot)
        v = _vector(r.get("embedding"))
        if v is not None:
            block = self.blocks.get(len(v))
            if block is None:
                block = self.blocks[len(v)] = _Block(len(v))
            self.place[slot] = (len(v), block.put(slot, v))

    # -- search ------------------------------------------------------------------------------

    def mask(self, scope: str, types: Sequence[str] | None) -> np.ndarray[Any, Any]:
        """The slots of live entities of ``scope`` (and of ``types``), as the engine's
        ``scope = $scope AND retracted_at = NONE AND type IN $types``."""
        n = self.size
        m: np.ndarray[Any, Any] = self.alive[:n] & (self.scope[:n] == code_of(self.codes, scope))
        if types is not None:
            m &= np.isin(self.type[:n], [code_of(self.codes, t) for t in types])
        return m

    def by_text(self, terms: Sequence[str], mask: np.ndarray[Any, Any], n: int) -> list[str]:
        """The keys of the ``n`` admitted entities sharing the most of ``terms`` (distinct),
        at least one, ties by key."""
        counts = np.zeros(self.size, dtype=np.int32)
        for term in dict.fromkeys(terms):
            held = self.postings.get(term)
            if held:
                counts[np.fromiter(held, dtype=np.int64, count=len(held))] += 1
        counts[~mask] = 0
        found = np.flatnonzero(counts)
        if len(found) > n:
            # Every entity counting more than the n-th does; those counting as many, by key.
            nth = np.partition(counts[found], len(found) - n)[len(found) - n]
            found = found[counts[found] >= nth]
        ids = self.ids
        ranked = sorted(found.tolist(), key=lambda s: (-int(counts[s]), ids[s]))
        return [ids[s] for s in ranked[:n]]

    def by_vector(self, query: Sequence[float], mask: np.ndarray[Any, Any], n: int) -> list[str]:
        """The keys of the admitted entities whose embedding (of the query's dimension) is
        nearest ``query`` by cosine, the ``n`` nearest and a margin past them (for the engine
        to order exactly), best first."""
        block = self.blocks.get(len(query))
        if block is None or n <= 0:
            return []
        owner = block.owner[: block.used]
        rows = np.flatnonzero(owner >= 0)
        if len(rows) == 0:
            return []
        slots = owner[rows]
        keep = slots < len(mask)
        rows, slots = rows[keep], slots[keep]
        admitted = mask[slots]
        rows, slots = rows[admitted], slots[admitted]
        if len(rows) == 0:
            return []
        q = np.asarray(query, dtype=np.float32)
        q /= float(np.linalg.norm(q)) or 1.0
        sims = block.mat[rows] @ q
        want = min(len(sims), n + max(8, n // 2))
        top = np.argpartition(-sims, want - 1)[:want] if len(sims) > want else np.arange(len(sims))
        top = top[np.argsort(-sims[top], kind="stable")]
        if not np.isfinite(sims[top]).all():
            raise Broken("an entity vector of the index is not finite")
        return [self.ids[int(slots[i])] for i in top.tolist()]
