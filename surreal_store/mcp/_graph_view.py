"""The knowledge graph of one scope as the MCP reference memory server shows it (entities with
their type and observation strings, relations as ``{from, to, relationType}``), held in memory
to answer ``read_graph``, ``search_nodes`` and ``open_nodes`` without reading the whole graph
from the database on every call.

It is derived: :mod:`._graph_tools` fills it from the store and keeps it in step with the
tables' change feeds (an entity whose records changed is read again), and never answers from
it before the feeds have shown nothing changed since (or, on an embedded store, nothing was
written since they last did). ``search_nodes`` is the
reference's: the query, lowercased, is a substring of an entity's lowercased name, type or one
of its observations; relations with either end among the matches. It runs as a scan of one
string holding every field (lowercased, separated by a character the query does not contain),
so its cost is one pass of ``str.find`` over the graph's text, not a loop over entities."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pydantic_core

if TYPE_CHECKING:
    from ..graph import Subgraph

__all__ = ["GraphView", "Relation", "ViewEntity", "entities_of", "relations_of"]

Relation = tuple[str, str, str]
"""(from, to, relationType)."""

_SEP: Final = "\x00"
# Candidates of the trigram index checked one by one rather than narrowed further.
_CHECK_AT_MOST: Final = 32


@dataclass
class ViewEntity:
    """An entity as the reference shows it, with the order it is listed in."""

    name: str
    type: str
    observations: list[str]
    order: tuple[Any, ...]

    def out(self) -> dict[str, Any]:
        return {"name": self.name, "entityType": self.type, "observations": list(self.observations)}


def relation_out(r: Relation) -> dict[str, str]:
    return {"from": r[0], "to": r[1], "relationType": r[2]}


def graph_text(data: Any) -> str:
    """The text the reference gives beside its structured content: ``JSON.stringify(x, null,
    2)``. pydantic-core's serializer writes the same text as Python's ``json.dumps`` with an
    indent of 2 and no ASCII escaping (tests/test_mcp_graph_view.py checks both), which matches
    JavaScript's, in a tenth of the time (the standard library's indenting encoder is pure
    Python)."""
    return pydantic_core.to_json(data, indent=2).decode()


@dataclass
class GraphView:
    """Entities by name and relations (each with the order it is listed in), plus the search
    text, rebuilt after a change only when a search asks for it."""

    entities: dict[str, ViewEntity] = field(default_factory=dict)
    relations: dict[Relation, tuple[Any, ...]] = field(default_factory=dict)
    touching: dict[str, set[Relation]] = field(default_factory=dict)
    _hay: str | None = None
    _starts: list[int] = field(default_factory=list)
    _owners: list[str] = field(default_factory=list)
    _skip: list[int] = field(default_factory=list)
    # Per entity of the search text: its name and where its fields begin (its span runs to
    # the next one's beginning).
    _names: list[str] = field(default_factory=list)
    _spans: list[int] = field(default_factory=list)
    _trigrams: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]] | None = None
    _calm: int = 0
    index_after: int = 8
    """Searches in a row with no change between them before the trigram index is built: a
    graph that changes between searches is scanned (a scan of 10,000 entities' text costs about
    a millisecond, a build a few hundred), a graph read many times in a row gets the index."""
    _graph: tuple[dict[str, Any], str] | None = None

    def _changed(self) -> None:
        self._hay = None
        self._trigrams = None
        self._calm = 0
        self._graph = None

    def replace(
        self,
        names: Iterable[str],
        entities: Iterable[ViewEntity],
        relations: Iterable[tuple[Relation, tuple[Any, ...]]],
    ) -> None:
        """Forget what the view holds of the entities ``names`` (and every relation touching
        them), then add ``entities`` and ``relations`` (those read again for them)."""
        for name in names:
            self.entities.pop(name, None)
            for r in self.touching.pop(name, set()):
                self.relations.pop(r, None)
                for end in (r[0], r[1]):
                    if end != name:
                        others = self.touching.get(end)
                        if others is not None:
                            others.discard(r)
        for e in entities:
            self.entities[e.name] = e
        for r, order in relations:
            # A relation is shown once per triple, whatever values or times its facts carry.
            known = self.relations.get(r)
            self.relations[r] = order if known is None else min(known, order)
            self.touching.setdefault(r[0], set()).add(r)
            self.touching.setdefault(r[1], set()).add(r)
        self._changed()

    # -- answers ------------------------------------------------------------------------

    def _entities_out(self, names: Iterable[str]) -> list[dict[str, Any]]:
        chosen = [self.entities[n] for n in names]
        chosen.sort(key=lambda e: e.order)
        return [e.out() for e in chosen]

    def _relations_out(self, rels: Iterable[Relation]) -> list[dict[str, str]]:
        return [relation_out(r) for r in sorted(rels, key=lambda r: (self.relations[r], r))]

    def read_graph(self) -> tuple[dict[str, Any], str]:
        """The whole graph and its text (kept until the next change)."""
        if self._graph is None:
            data = {
                "entities": self._entities_out(self.entities),
                "relations": self._relations_out(self.relations),
            }
            self._graph = (data, graph_text(data))
        return self._graph

    def _around(self, names: set[str]) -> dict[str, Any]:
        rels: set[Relation] = set()
        for n in names:
            rels |= self.touching.get(n, set())
        return {"entities": self._entities_out(names), "relations": self._relations_out(rels)}

    def open_nodes(self, names: Iterable[str]) -> dict[str, Any]:
        """The named entities (absent names ignored) and the relations with either end among
        them, as the reference's ``open_nodes``."""
        return self._around({n for n in names if n in self.entities})

    def search_nodes(self, query: str) -> dict[str, Any]:
        """The reference's ``search_nodes``."""
        q = query.lower()
        if _SEP in q:  # the separator itself: the plain loop
            found = {
                e.name
                for e in self.entities.values()
                if any(q in f.lower() for f in (e.name, e.type, *e.observations))
            }
            return self._around(found)
        if not q:
            return self._around(set(self.entities))
        hay = self._search_text()
        self._calm += 1
        if len(q) >= 3 and self._calm > self.index_after and q.isprintable():
            # (A query that is not printable text, a lone surrogate say, is scanned.)
            return self._around(self._search_indexed(hay, q))
        starts, owners, skip = self._starts, self._owners, self._skip
        found = set()
        at = hay.find(q)
        while at >= 0:
            # No match spans a separator (the query has none), so it lies in one field.
            i = bisect.bisect_right(starts, at) - 1
            found.add(owners[i])
            at = hay.find(q, skip[i])  # the owner matched: on from its last field
        return self._around(found)

    def _search_text(self) -> str:
        if self._hay is None:
            parts: list[str] = []
            starts: list[int] = []
            owners: list[str] = []
            at = 0
            for e in self.entities.values():
                for f in (e.name, e.type, *e.observations):
                    low = f.lower()
                    starts.append(at)
                    owners.append(e.name)
                    parts.append(low)
                    at += len(low) + 1
            skip: list[int] = []
            for i, owner in enumerate(owners):
                if i and owners[i - 1] != owner:
                    skip.extend([starts[i]] * (i - len(skip)))
            skip.extend([at] * (len(owners) - len(skip)))
            self._hay = _SEP.join(parts)
            self._starts, self._owners, self._skip = starts, owners, skip
            self._names = list(self.entities)
            self._spans = [
                starts[i] for i in range(len(owners)) if not i or owners[i - 1] != owners[i]
            ]
        return self._hay

    def _search_indexed(self, hay: str, q: str) -> set[str]:
        """The entities whose text holds ``q`` (three characters or more), from the trigram
        index: the entities holding every trigram of ``q``, each then checked by a search of
        its own span of the text (the index only narrows, it never decides)."""
        codes, owners = self._trigram_index(hay)
        wanted = np.unique(_trigram_codes(q))
        los = np.searchsorted(codes, wanted, "left")
        his = np.searchsorted(codes, wanted, "right")
        # The rarest trigram's entities first, then kept to those each other trigram has
        # (a posting is ascending, so a lookup by bisection), until few enough are left that
        # checking each is cheaper than narrowing on.
        ranges = sorted(zip((his - los).tolist(), los.tolist(), his.tolist(), strict=True))
        candidates = owners[ranges[0][1] : ranges[0][2]]
        for _, lo, hi in ranges[1:]:
            if len(candidates) <= _CHECK_AT_MOST:
                break
            posting = owners[lo:hi]
            at = np.minimum(np.searchsorted(posting, candidates), len(posting) - 1)
            candidates = candidates[posting[at] == candidates]
        found: set[str] = set()
        spans, names, end = self._spans, self._names, len(hay)
        for i in candidates.tolist():
            stop = spans[i + 1] if i + 1 < len(spans) else end
            if hay.find(q, spans[i], stop) >= 0:
                found.add(names[i])
        return found

    def _trigram_index(self, hay: str) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Every (trigram, entity) pair of the search text, sorted by trigram: the trigrams'
        codes and, beside each, the entity's position. Trigrams across a separator hold a NUL,
        which no query holds."""
        if self._trigrams is None:
            codes = _trigram_codes(hay)
            if len(codes):
                spans = np.asarray(self._spans, dtype=np.int64)
                lengths = np.diff(np.append(spans, len(hay)))
                owners = np.repeat(np.arange(len(spans), dtype=np.int64), lengths)[: len(codes)]
                # Stable: the owners, ascending along the text, stay ascending within a code.
                order = np.argsort(codes, kind="stable")
                codes, owners = codes[order], owners[order]
                keep = np.ones(len(codes), dtype=bool)
                keep[1:] = (codes[1:] != codes[:-1]) | (owners[1:] != owners[:-1])
                codes, owners = codes[keep], owners[keep]
            else:
                owners = np.zeros(0, dtype=np.int64)
            self._trigrams = (codes, owners)
        return self._trigrams


def _trigram_codes(text: str) -> np.ndarray[Any, Any]:
    """Each three-character window of ``text`` as one number (code points take 21 bits)."""
    points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(points) < 3:
        return np.zeros(0, dtype=np.uint64)
    return (points[:-2] << np.uint64(42)) | (points[1:-1] << np.uint64(21)) | points[2:]


def entities_of(sub: Subgraph) -> list[ViewEntity]:
    """A subgraph's entities as the view holds them."""
    return [
        ViewEntity(
            name=e.name,
            type=e.type,
            observations=list(dict.fromkeys(sub.contents(e.name))),
            order=(e.recorded_at, e.position or 0, e.name),
        )
        for e in sub.entities
    ]


def relations_of(sub: Subgraph) -> list[tuple[Relation, tuple[Any, ...]]]:
    """A subgraph's facts as the view's relations, each with the order it is listed in."""
    return [((f.subject, f.object, f.predicate), (f.recorded_at, f.id)) for f in sub.facts]
