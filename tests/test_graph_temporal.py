"""Bi-temporal facts and supersession against a pure-Python model (#35).

A hypothesis state machine runs random sequences of fact assertions (single- and multi-valued
predicates, bounded and open valid times, from sources), retractions, ends in valid time
(``end_facts``), entity deletions and
re-creations, observation additions and removals, memory invalidations and restores, and, once
the provenance cascade reaches facts, distrust and restore of their sources. After every step
it compares, for several valid times and every transaction time the run has passed through,
the facts the store answers with those of the model, and each entity's observations likewise.

Transaction time is the database's clock: before each step the machine reads it (``T_j``), so
that every write of step ``j`` lies after ``T_j`` and before ``T_{j+1}``; the model numbers
its writes by step, and "as known at ``T_j``" is "recorded before step ``j`` and not retracted
before it".
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from surreal_store import NotFoundError, Store, graph, memory, provenance

T = TypeVar("T")
_RUNS = int(os.environ.get("SM_RUNS", "40"))
ENTITIES = ("A", "B", "C")
PREDICATES = ("p", "q")  # p is single-valued, q is not
SINGLE = {"p"}
VALUES = (None, 1)
SOURCES = 2
YEARS = range(8)


def year(n: int) -> dt.datetime:
    return dt.datetime(2000 + n, 1, 1, tzinfo=dt.UTC)


@dataclass(eq=False)
class MFact:
    s: str
    p: str
    o: str
    v: Any
    vf: int
    vu: int | None
    rec: int
    sources: frozenset[int]
    ret: int | None = None
    # The asserted fact this one re-records (None: it is one) and, for one, its position in
    # its assertion: facts shown together supersede in that order (schema 027).
    origin: MFact | None = None
    n: int = 0
    # What it holds of the facts it superseded and of the assertions it joins: (fact, from,
    # until).
    took: list[tuple[MFact, int, int | None]] = field(default_factory=list)
    # Sources that reach it only through a part it holds (`via`): lineage, not causes.
    alt: frozenset[int] = frozenset()

    @property
    def key(self) -> tuple[str, str, str, Any]:
        return (self.s, self.p, self.o, self.v)

    def known(self, k: int | None) -> bool:
        if k is None:
            return self.ret is None
        return self.rec < k and (self.ret is None or self.ret >= k)

    def valid(self, v: int) -> bool:
        return self.vf <= v and (self.vu is None or v < self.vu)

    def row(self) -> tuple[Any, ...]:
        return (self.s, self.p, self.o, self.v, self.vf, self.vu)

    def order(self) -> tuple[int, int]:
        first = self.origin or self
        return (first.rec, first.n)


def _lt(a: int | None, b: int | None) -> bool:
    """a < b, where None is the end of time."""
    return b is None if a is None else (b is None or a < b)


def _min(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _clip(
    took: list[tuple[MFact, int, int | None]], vf: int, vu: int | None
) -> list[tuple[MFact, int, int | None]]:
    out = []
    for g, a, b in took:
        a, b = max(a, vf), _min(b, vu)
        if _lt(a, b):
            out.append((g, a, b))
    return out


@dataclass
class MLink:
    content: str
    rec: int
    ret: int | None = None

    def known(self, k: int | None) -> bool:
        if k is None:
            return self.ret is None
        return self.rec < k and (self.ret is None or self.ret >= k)


@dataclass
class MEntity:
    lives: list[tuple[int, int | None]] = field(default_factory=list)
    links: list[MLink] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return bool(self.lives) and self.lives[-1][1] is None

    def alive_at(self, k: int | None) -> bool:
        if k is None:
            return self.alive
        return any(r < k and (d is None or d >= k) for r, d in self.lives)


class Model:
    """The rules of the graph, in plain Python (docs/graph.md, "Supersession")."""

    def __init__(self) -> None:
        self.facts: list[MFact] = []
        self.entities = {e: MEntity(lives=[(-1, None)]) for e in ENTITIES}  # before step 0
        self.distrusted: set[int] = set()  # fact sources distrusted with their cascade
        # Observation memories invalidated: (entity, content), each entity's its own (#35 M5).
        self.hidden_contents: set[tuple[str, str]] = set()
        # Facts a restore shows, not reached yet: still hidden to the ones shown before them.
        self.pending: set[int] = set()

    def current(self) -> list[MFact]:
        return [f for f in self.facts if f.ret is None]

    def hidden(self, f: MFact) -> bool:
        return bool(f.sources & self.distrusted)

    def _rivals(self, f: MFact) -> list[MFact]:
        return [
            g for g in self.current()
            if g.s == f.s and g.p == f.p and g.key != f.key and not self.hidden(g)
            and id(g) not in self.pending
        ]  # fmt: skip

    def _copy(self, g: MFact, vf: int, vu: int | None, step: int) -> MFact:
        """g recorded again over [vf, vu); one recorded hidden gives back what it holds."""
        c = MFact(
            *g.key, vf, vu, step, g.sources, origin=g.origin or g, took=_clip(g.took, vf, vu),
            alt=g.alt,
        )  # fmt: skip
        self.facts.append(c)
        if self.hidden(c):
            self._give_back(c, step)
        return c

    def _give_back(self, f: MFact, step: int) -> None:
        """f (current) is hidden: every part it took comes back, between living entities, one
        at a time in assertion order; one that comes back visible is asserted again (shown)
        before the next comes back."""
        took, f.took = f.took, []
        for g, a, b in sorted(took, key=lambda t: t[0].order()):
            lives = [self.entities[e].lives[-1] for e in (g.s, g.o)]
            if all(d is None and r <= g.rec for r, d in lives):
                c = self._copy(g, a, b, step)
                if c.ret is None and not self.hidden(c):
                    self._show(c, step)

    def _part(
        self,
        key: tuple[str, str, str, Any],
        vf: int,
        vu: int | None,
        step: int,
        src: frozenset[int],
        n: int,
    ) -> MFact:
        """An assertion joined into another fact: recorded and retracted at once."""
        own = MFact(*key, vf, vu, step, src, ret=step, n=n)
        self.facts.append(own)
        return own

    def _tail(
        self, f: MFact, end: int, rivals: list[MFact], step: int, copy: bool, n: int = 0
    ) -> None:
        """f fills in history to ``end``: the rest of it is a part the rival starting there
        holds (recorded and retracted at once), if that rival is still current."""
        by = next((g for g in rivals if g.vf == end), None)
        if by is None or by.ret is not None:
            return
        if copy:
            tail = self._copy(f, end, None, step)
            tail.ret = step
        else:
            tail = MFact(*f.key, end, None, step, f.sources, ret=step, n=n)
            self.facts.append(tail)
        by.took.append((tail, end, None))

    def _take(self, f: MFact, step: int, fill: bool) -> MFact:
        """f (current, visible) supersedes its visible rivals as an assertion now would."""
        if f.p not in SINGLE:
            return f
        rivals = self._rivals(f)
        later = [g.vf for g in rivals if g.vf > f.vf]
        stand = f
        if fill and f.vu is None and later:
            f.ret = step
            stand = self._copy(f, f.vf, min(later), step)
            self._tail(f, min(later), rivals, step, copy=True)
        vf, vu = stand.vf, stand.vu
        for g in rivals:
            if not (_lt(vf, g.vu) and _lt(g.vf, vu)):
                continue
            g.ret = step
            if g.vf < vf:
                self._copy(g, g.vf, vf, step)
            if vu is not None and _lt(vu, g.vu):
                self._copy(g, vu, g.vu, step)
            stand.took.append((g, max(g.vf, vf), _min(g.vu, vu)))
        return stand

    def assert_fact(
        self,
        s: str,
        p: str,
        o: str,
        v: Any,
        vf: int,
        vu: int | None,
        step: int,
        src: set[int],
        n: int,
    ) -> MFact | None:
        """The fact recorded (None: one that covers it is current; it gains the sources)."""
        key = (s, p, o, v)
        # Only the current facts as visible as the assertion cover it or join it.
        hidden = bool(src & self.distrusted)
        # A hidden assertion joins nothing; a visible one, the visible facts of its key.
        kin = [] if hidden else [f for f in self.current() if f.key == key and not self.hidden(f)]
        covers = [
            f for f in kin
            if f.vf <= vf and (f.vu is None or (vu is not None and f.vu >= vu))
        ]  # fmt: skip
        if covers:
            f = min(covers, key=lambda f: f.rec)
            if (src - f.sources - f.alt) or (f.sources - src):
                own = self._part(key, vf, vu, step, frozenset(src), n)
                f.took.append((own, vf, vu))
                f.alt = f.alt | (src - f.sources)
            return None
        single = p in SINGLE
        rivals: list[MFact] = []
        later: list[int] = []
        if vu is None and single and not (src & self.distrusted):
            probe = MFact(s, p, o, v, vf, vu, step, frozenset())
            rivals = self._rivals(probe)
            later = [g.vf for g in rivals if g.vf > vf]
            if later:
                vu = min(later)
        merged = [
            g for g in kin if (vu is None or g.vf <= vu) and (g.vu is None or g.vu >= vf)
        ]  # fmt: skip
        start = min([vf, *(g.vf for g in merged)])
        end = (
            None
            if vu is None or any(g.vu is None for g in merged)
            else max([vu, *(g.vu for g in merged if g.vu is not None)])
        )
        sources = frozenset(src).union(*(g.sources for g in merged))
        for g in merged:
            g.ret = step
        parts = (
            [(self._part(key, vf, vu, step, frozenset(src), n), vf, vu)]
            + [(g, g.vf, g.vu) for g in merged]
            if merged
            else []
        )
        new = MFact(
            s, p, o, v, start, end, step, sources, n=n, took=parts,
            alt=frozenset().union(*(g.alt for g in merged)) - sources,
        )  # fmt: skip
        self.facts.append(new)
        if self.hidden(new):
            self._give_back(new, step)
        elif single:
            self._take(new, step, fill=False)
        if later and vu is not None:
            probe = MFact(s, p, o, v, vf, None, step, frozenset(src))
            self._tail(probe, vu, rivals, step, copy=False, n=n)
        return new

    def unlearn(self, key: tuple[str, str, str, Any], hit: list[MFact], whole: bool) -> None:
        """Facts retracted: what others hold of the same assertions (of the key, when it was
        named alone) is not given back."""
        firsts = {id(f.origin or f) for f in hit}
        for f in self.current():
            f.took = [
                t for t in f.took
                if id(t[0].origin or t[0]) not in firsts and not (whole and t[0].key == key)
            ]  # fmt: skip

    def end_parts(self, key: tuple[str, str, str, Any], at: int) -> None:
        """The key ended at ``at``: what others hold of it ends there too."""
        for f in self.current():
            f.took = [
                (g, a, b if b is not None and b <= at else at) if g.key == key else (g, a, b)
                for g, a, b in f.took
                if g.key != key or a < at
            ]

    def distrust(self, i: int, step: int) -> None:
        was = {id(f): self.hidden(f) for f in self.facts}
        self.distrusted.add(i)
        for f in sorted((f for f in self.facts if i in f.sources), key=MFact.order):
            if f.ret is None and not was[id(f)] and self.hidden(f):
                self._give_back(f, step)

    def restore(self, i: int, step: int) -> None:
        was = {id(f): self.hidden(f) for f in self.facts}
        self.distrusted.discard(i)
        shown = [f for f in self.facts if i in f.sources and was[id(f)] and not self.hidden(f)]
        # Shown one at a time in the order of their assertions: those not reached yet are
        # still hidden when an earlier one is shown.
        self.pending = {id(f) for f in shown}
        for f in sorted(shown, key=MFact.order):
            self.pending.discard(id(f))
            if f.ret is None:
                self._show(f, step)

    def _show(self, f: MFact, step: int) -> None:
        """f (current) is shown again: asserted now, as assert_fact has it (one current
        fact per key: covered, it gives its sources to the cover; it joins those of its
        key that overlap or adjoin it), superseding after filling in history."""
        kin = [
            g for g in self.current()
            if g.key == f.key and g is not f and not self.hidden(g) and id(g) not in self.pending
        ]  # fmt: skip
        if not kin:
            self._take(f, step, fill=True)
            return
        covers = [
            g for g in kin
            if g.vf <= f.vf and (g.vu is None or (f.vu is not None and g.vu >= f.vu))
        ]  # fmt: skip
        if covers:
            f.ret = step
            cover = min(covers, key=lambda g: g.rec)
            cover.took.append((f, f.vf, f.vu))
            cover.alt = cover.alt | ((f.sources | f.alt) - cover.sources)
            return
        vu = f.vu
        rivals: list[MFact] = []
        later: list[int] = []
        if vu is None and f.p in SINGLE:
            rivals = self._rivals(f)
            later = [g.vf for g in rivals if g.vf > f.vf]
            if later:
                vu = min(later)
        merged = [
            g for g in kin if (vu is None or g.vf <= vu) and (g.vu is None or g.vu >= f.vf)
        ]  # fmt: skip
        if not merged:
            self._take(f, step, fill=True)
            return
        start = min([f.vf, *(g.vf for g in merged)])
        end = (
            None
            if vu is None or any(g.vu is None for g in merged)
            else max([vu, *(g.vu for g in merged if g.vu is not None)])
        )
        f.ret = step
        for g in merged:
            g.ret = step
        sources = f.sources.union(*(g.sources for g in merged))
        new = MFact(
            *f.key, start, end, step, sources, origin=f.origin or f,
            took=[(f, f.vf, vu), *((g, g.vf, g.vu) for g in merged)],
            alt=(f.alt.union(*(g.alt for g in merged))) - sources,
        )  # fmt: skip
        self.facts.append(new)
        self._take(new, step, fill=False)
        if later and vu is not None:
            self._tail(f, vu, rivals, step, copy=True)

    def visible(self, v: int, k: int | None) -> list[tuple[Any, ...]]:
        return sorted(
            (f.row() for f in self.facts if f.known(k) and f.valid(v) and not self.hidden(f)),
            key=repr,
        )

    def contents(self, e: str, k: int | None) -> list[str]:
        return [
            link.content
            for link in self.entities[e].links
            if link.known(k) and (e, link.content) not in self.hidden_contents
        ]


class Loop:
    """One event loop and one store for every run; each run works in a scope of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = Store("mem://")
        self.run(self.store.open())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.store.aclose())
        self.loop.close()


@pytest.fixture(scope="module")
def engine() -> Iterator[Loop]:
    loop = Loop()
    yield loop
    loop.close()


async def _cascade_reaches_facts(store: Store) -> bool:
    """Whether distrusting a fact's source hides the fact (and restoring shows it again):
    the provenance cascade through facts, which another part of #35 adds."""
    scope = f"probe-{uuid.uuid4().hex}"
    src = await memory.remember(store, content="a source", scope=scope)
    await graph.create_entities(
        store, entities=[graph.NewEntity(name="x"), graph.NewEntity(name="y")], scope=scope
    )
    fact = graph.NewFact(subject="x", predicate="r", object="y")
    await graph.assert_facts(store, facts=[fact], scope=scope, source=src.id)
    await provenance.invalidate(store, memory=src.id, reason="probe")
    hidden = await graph.facts(store, scope=scope) == []
    await provenance.restore(store, memory=src.id)
    return hidden and len(await graph.facts(store, scope=scope)) == 1


def _machine(engine: Loop, cascade: bool) -> type[RuleBasedStateMachine]:
    store = engine.store

    class Temporal(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.model = Model()
            self.scope = f"sm-{uuid.uuid4().hex}"
            self.times: list[dt.datetime] = []
            engine.run(
                graph.create_entities(
                    store, entities=[graph.NewEntity(name=e) for e in ENTITIES], scope=self.scope
                )
            )
            engine.run(
                graph.declare_predicate(store, name="p", single_valued=True, scope=self.scope)
            )
            self.sources = [
                engine.run(memory.remember(store, content=f"source {i}", scope=self.scope)).id
                for i in range(SOURCES)
            ]
            self.tick()  # the entities were made before step 0

        def tick(self) -> int:
            """Read the database's clock before a step's writes; the step's number."""
            self.times.append(
                engine.run(store.query_required_single("RETURN time::now();", dt.datetime))
            )
            return len(self.times) - 1

        # -- facts -------------------------------------------------------------------------

        @rule(
            rows=st.lists(
                st.tuples(
                    st.sampled_from(ENTITIES),
                    st.sampled_from(PREDICATES),
                    st.sampled_from(ENTITIES),
                    st.sampled_from(VALUES),
                    st.sampled_from(YEARS),
                    st.one_of(st.none(), st.integers(1, 4)),
                ),
                min_size=1,
                max_size=2,
            ),
            src=st.sets(st.integers(0, SOURCES - 1), max_size=2),
        )
        def assert_facts(self, rows: list[tuple[Any, ...]], src: set[int]) -> None:
            step = self.tick()
            news = [
                graph.NewFact(
                    subject=s, predicate=p, object=o, value=v, valid_from=year(vf),
                    valid_until=None if span is None else year(vf + span),
                )
                for s, p, o, v, vf, span in rows
            ]  # fmt: skip
            if not all(self.model.entities[e].alive for r in rows for e in (r[0], r[2])):
                with pytest.raises(NotFoundError):
                    engine.run(
                        graph.assert_facts(
                            store, facts=news, scope=self.scope,
                            source=[self.sources[i] for i in sorted(src)],
                        )
                    )  # fmt: skip
                return
            got = engine.run(
                graph.assert_facts(
                    store, facts=news, scope=self.scope,
                    source=[self.sources[i] for i in sorted(src)],
                )
            )  # fmt: skip
            recorded = [
                made.row()
                for n, (s, p, o, v, vf, span) in enumerate(rows)
                if (made := self.model.assert_fact(
                    s, p, o, v, vf, None if span is None else vf + span, step, src, n
                )) is not None
            ]  # fmt: skip
            assert [_row(f) for f in got] == recorded

        @rule(
            s=st.sampled_from(ENTITIES),
            p=st.sampled_from(PREDICATES),
            o=st.sampled_from(ENTITIES),
            v=st.sampled_from(VALUES),
            exact=st.booleans(),
            data=st.data(),
        )
        def retract(self, s: str, p: str, o: str, v: Any, exact: bool, data: st.DataObject) -> None:
            step = self.tick()
            current = [f for f in self.model.current() if f.key == (s, p, o, v)]
            if exact and current:
                target = data.draw(st.sampled_from(current))
                spec = graph.NewFact(
                    subject=s, predicate=p, object=o, value=v, valid_from=year(target.vf),
                    valid_until=None if target.vu is None else year(target.vu),
                )  # fmt: skip
                hit = [
                    f for f in current
                    if f.vf == target.vf and (target.vu is None or f.vu == target.vu)
                ]  # fmt: skip
            else:
                spec = graph.NewFact(subject=s, predicate=p, object=o, value=v)
                hit = current
            got = engine.run(graph.retract_facts(store, facts=[spec], scope=self.scope))
            for f in hit:
                f.ret = step
            self.model.unlearn((s, p, o, v), hit, whole=not (exact and current))
            assert sorted((_row(f) for f in got), key=repr) == sorted(
                (f.row() for f in hit), key=repr
            )

        @rule(
            s=st.sampled_from(ENTITIES),
            p=st.sampled_from(PREDICATES),
            o=st.sampled_from(ENTITIES),
            v=st.sampled_from(VALUES),
            at=st.sampled_from(YEARS),
        )
        def end(self, s: str, p: str, o: str, v: Any, at: int) -> None:
            step = self.tick()
            spec = graph.NewFact(subject=s, predicate=p, object=o, value=v)
            got = engine.run(graph.end_facts(store, facts=[spec], at=year(at), scope=self.scope))
            changed = []
            for f in [f for f in self.model.current() if f.key == (s, p, o, v)]:
                if f.vu is None or f.vu > at:
                    f.ret = step
                    changed.append(f if f.vf >= at else self.model._copy(f, f.vf, at, step))
            self.model.end_parts((s, p, o, v), at)
            assert sorted(((_row(f), f.retracted_at is None) for f in got), key=repr) == sorted(
                ((f.row(), f.ret is None) for f in changed), key=repr
            )

        # -- entities ----------------------------------------------------------------------

        @rule(e=st.sampled_from(ENTITIES))
        def delete_entity(self, e: str) -> None:
            step = self.tick()
            gone = engine.run(graph.delete_entities(store, names=[e], scope=self.scope))
            m = self.model.entities[e]
            assert [x.name for x in gone] == ([e] if m.alive else [])
            if not m.alive:
                return
            m.lives[-1] = (m.lives[-1][0], step)
            for f in self.model.current():
                if e in (f.s, f.o):
                    f.ret = step
            for link in m.links:
                if link.ret is None:
                    link.ret = step

        @rule(e=st.sampled_from(ENTITIES))
        def create_entity(self, e: str) -> None:
            step = self.tick()
            made = engine.run(
                graph.create_entities(store, entities=[graph.NewEntity(name=e)], scope=self.scope)
            )
            m = self.model.entities[e]
            assert [x.name for x in made] == ([] if m.alive else [e])
            if not m.alive:
                m.lives.append((step, None))

        # -- observations ------------------------------------------------------------------

        @rule(
            e=st.sampled_from(ENTITIES),
            contents=st.lists(st.sampled_from(["o1", "o2", "o3"]), min_size=1, max_size=3),
        )
        def add_observations(self, e: str, contents: list[str]) -> None:
            step = self.tick()
            m = self.model.entities[e]
            if not m.alive:
                with pytest.raises(NotFoundError):
                    engine.run(
                        graph.add_observations(store, entity=e, contents=contents, scope=self.scope)
                    )
                return
            got = engine.run(
                graph.add_observations(store, entity=e, contents=contents, scope=self.scope)
            )
            have = {link.content for link in m.links if link.ret is None}
            added = [c for c in dict.fromkeys(contents) if c not in have]
            m.links += [MLink(c, step) for c in added]
            assert got == added

        @rule(
            e=st.sampled_from(ENTITIES),
            contents=st.lists(st.sampled_from(["o1", "o2", "o3"]), min_size=1, max_size=2),
        )
        def delete_observations(self, e: str, contents: list[str]) -> None:
            step = self.tick()
            engine.run(
                graph.delete_observations(store, entity=e, contents=contents, scope=self.scope)
            )
            for link in self.model.entities[e].links:
                if link.ret is None and link.content in contents:
                    link.ret = step

        @rule(
            e=st.sampled_from(ENTITIES),
            content=st.sampled_from(["o1", "o2", "o3"]),
            hide=st.booleans(),
        )
        def invalidate_observation(self, e: str, content: str, hide: bool) -> None:
            self.tick()
            mid = graph.observation_memory_id(self.scope, e, content)
            if not any(link.content == content for link in self.model.entities[e].links):
                return  # no such memory yet
            if hide and (e, content) not in self.model.hidden_contents:
                engine.run(memory.invalidate(store, memory=mid, reason="doubt"))
                self.model.hidden_contents.add((e, content))
            elif not hide and (e, content) in self.model.hidden_contents:
                engine.run(memory.restore(store, memory=mid))
                self.model.hidden_contents.discard((e, content))

        # -- sources (once the provenance cascade reaches facts) ----------------------------

        @precondition(lambda self: cascade)
        @rule(i=st.integers(0, SOURCES - 1), distrust=st.booleans())
        def distrust_source(self, i: int, distrust: bool) -> None:
            step = self.tick()
            if distrust and i not in self.model.distrusted:
                engine.run(provenance.invalidate(store, memory=self.sources[i], reason="bad"))
                self.model.distrust(i, step)
            elif not distrust and i in self.model.distrusted:
                engine.run(provenance.restore(store, memory=self.sources[i]))
                self.model.restore(i, step)

        # -- the comparison ----------------------------------------------------------------

        @invariant()
        def facts_match_at_every_time(self) -> None:
            if not self.times:
                return
            knowns: list[int | None] = [None, *range(1, len(self.times))]
            for k in knowns:
                known_at = None if k is None else self.times[k]
                for v in (0, 2, 5, 7):
                    got = engine.run(
                        graph.facts(store, scope=self.scope, valid_at=year(v), known_at=known_at)
                    )
                    assert sorted((_row(f) for f in got), key=repr) == self.model.visible(v, k), (
                        f"valid_at {v}, known_at step {k}"
                    )
            history = engine.run(graph.fact_history(store, scope=self.scope))
            assert len(history) == len(self.model.facts)

        @invariant()
        def observations_match(self) -> None:
            if not self.times:
                return
            for k in (None, len(self.times) - 1):
                known_at = None if k is None else self.times[k]
                sub = engine.run(graph.read_graph(store, scope=self.scope, known_at=known_at))
                alive = {e for e, m in self.model.entities.items() if m.alive_at(k)}
                assert {e.name for e in sub.entities} == alive
                for e in alive:
                    assert sub.contents(e) == self.model.contents(e, k), (e, k)

    return Temporal


def _row(f: graph.Fact) -> tuple[Any, ...]:
    vf = f.valid_from.year - 2000
    vu = None if f.valid_until is None else f.valid_until.year - 2000
    return (f.subject, f.predicate, f.object, f.value, vf, vu)


@pytest.mark.slow
def test_facts_as_of_any_valid_and_transaction_time_match_the_model(engine: Loop) -> None:
    cascade = engine.run(_cascade_reaches_facts(engine.store))
    run_state_machine_as_test(
        _machine(engine, cascade),
        settings=settings(
            max_examples=_RUNS,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        ),
    )


def test_the_machine_replays_a_distrust_that_undoes_supersession(engine: Loop) -> None:
    """A fixed example of the machine (rule 2): B from year 0, then C from year 2 from source
    0, which supersedes it; distrusting source 0 hides C and brings B back from year 2; trusting
    it again supersedes B again. Before schema 027 the store kept B closed at year 2 with C
    hidden, and the invariant failed after the distrust (no fact at valid_at 2)."""
    if not engine.run(_cascade_reaches_facts(engine.store)):
        pytest.skip("the provenance cascade does not reach facts")
    state: Any = _machine(engine, True)()
    steps: list[tuple[str, dict[str, Any]]] = [
        ("assert_facts", {"rows": [("A", "p", "B", None, 0, None)], "src": set()}),
        ("assert_facts", {"rows": [("A", "p", "C", None, 2, None)], "src": {0}}),
        ("distrust_source", {"i": 0, "distrust": True}),
        ("distrust_source", {"i": 0, "distrust": False}),
        ("distrust_source", {"i": 0, "distrust": True}),
    ]
    for name, args in steps:
        getattr(state, name)(**args)
        state.facts_match_at_every_time()
    # B's part given back joins its piece before year 2 (one fact per key, schema 036).
    assert state.model.visible(5, None) == [("A", "p", "B", None, 0, None)]
    state.teardown()


def test_a_fact_shown_again_joins_the_visible_fact_of_its_key(engine: Loop) -> None:
    """A fixed example (#35 finding 2): a fact of source 0 is hidden, the same fact is
    asserted from a trusted source (recorded beside it), then source 0 is trusted again. The
    shown fact follows the assertion's rule, one current fact per key: covered by the
    visible one, it becomes a part of it (q, B); adjoining it, one fact spans both (q, C).
    Before, each stood beside the visible one: two current facts said the same. Distrusting
    source 0 again leaves what the trusted assertions said."""
    if not engine.run(_cascade_reaches_facts(engine.store)):
        pytest.skip("the provenance cascade does not reach facts")
    state: Any = _machine(engine, True)()
    steps: list[tuple[str, dict[str, Any]]] = [
        ("assert_facts", {"rows": [("A", "q", "B", None, 0, None)], "src": {0}}),
        ("assert_facts", {"rows": [("A", "q", "C", None, 0, 2)], "src": {0}}),
        ("distrust_source", {"i": 0, "distrust": True}),
        ("assert_facts", {"rows": [("A", "q", "B", None, 0, None)], "src": set()}),
        ("assert_facts", {"rows": [("A", "q", "C", None, 2, None)], "src": set()}),
        ("distrust_source", {"i": 0, "distrust": False}),
    ]
    for name, args in steps:
        getattr(state, name)(**args)
        state.facts_match_at_every_time()
    current = engine.run(graph.facts(engine.store, scope=state.scope, valid_at=year(1)))
    assert sorted(_row(f) for f in current) == [
        ("A", "q", "B", None, 0, None),
        ("A", "q", "C", None, 0, None),
    ]
    # Distrusting source 0 again gives back what the trusted assertions said: (q, B) from
    # year 0, (q, C) from year 2 (#35: the joined facts hid them whole before).
    state.distrust_source(i=0, distrust=True)
    state.facts_match_at_every_time()
    current = engine.run(graph.facts(engine.store, scope=state.scope, valid_at=year(1)))
    assert [_row(f) for f in current] == [("A", "q", "B", None, 0, None)]
    later = engine.run(graph.facts(engine.store, scope=state.scope, valid_at=year(3)))
    assert sorted(_row(f) for f in later) == [
        ("A", "q", "B", None, 0, None),
        ("A", "q", "C", None, 2, None),
    ]
    state.teardown()


def test_a_distrust_undone_leaves_a_partly_superseded_fact_as_it_was(engine: Loop) -> None:
    """A fixed example (#35 breaker finding 7): B over years 0-6 from source 0, then C over
    2-4 from source 1, which takes that part of it. Distrusting source 0 hides both pieces of
    B; trusting it again asserts B as the store held it when it was distrusted (its two
    pieces), so C keeps the years it took and the view is what it was before the distrust."""
    if not engine.run(_cascade_reaches_facts(engine.store)):
        pytest.skip("the provenance cascade does not reach facts")
    state: Any = _machine(engine, True)()
    for name, args in (
        ("assert_facts", {"rows": [("A", "p", "B", None, 0, 6)], "src": {0}}),
        ("assert_facts", {"rows": [("A", "p", "C", None, 2, 2)], "src": {1}}),
    ):
        getattr(state, name)(**args)
    before = [state.model.visible(v, None) for v in YEARS]
    assert before[3] == [("A", "p", "C", None, 2, 4)]
    state.distrust_source(i=0, distrust=True)
    state.facts_match_at_every_time()
    state.distrust_source(i=0, distrust=False)
    state.facts_match_at_every_time()
    assert [state.model.visible(v, None) for v in YEARS] == before
    state.teardown()


_BOUNDED = st.tuples(
    st.just("assert"),
    st.sampled_from(ENTITIES),
    st.sampled_from(PREDICATES),
    st.sampled_from(ENTITIES),
    st.sampled_from(VALUES),
    st.sampled_from(YEARS),
    st.integers(1, 4),
    st.sets(st.integers(0, SOURCES - 1), max_size=2),
)
_TRUST = st.tuples(st.sampled_from(("distrust", "restore")), st.integers(0, SOURCES - 1))


@settings(max_examples=500, deadline=None, database=None)
@given(steps=st.lists(st.one_of(_BOUNDED, _TRUST), max_size=10), i=st.integers(0, SOURCES - 1))
def test_the_model_undoes_a_distrust_of_bounded_facts_exactly(
    steps: list[tuple[Any, ...]], i: int
) -> None:
    """The rules, on the model (which the machine above holds the store to): with facts whose
    valid time is bounded, distrusting a source and trusting it again with nothing between
    leaves every valid time's view as it was. (An open fact that filled in history is the
    exception: docs/graph.md, "Open cases".)"""
    model = Model()
    for step, (kind, *args) in enumerate(steps, 1):
        if kind == "assert":
            s, p, o, v, vf, span, src = args
            model.assert_fact(s, p, o, v, vf, vf + span, step, set(src), 0)
        elif kind == "distrust" and args[0] not in model.distrusted:
            model.distrust(args[0], step)
        elif kind == "restore" and args[0] in model.distrusted:
            model.restore(args[0], step)
    assume(i not in model.distrusted)
    before = [model.visible(v, None) for v in range(-1, 14)]
    model.distrust(i, len(steps) + 1)
    model.restore(i, len(steps) + 2)
    assert [model.visible(v, None) for v in range(-1, 14)] == before
