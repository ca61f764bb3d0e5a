"""Overlapping invalidations: a memory is hidden exactly while at least one cause upstream of it
stands. A hypothesis state machine runs random sequences of remembers, derivations,
invalidations, restores and forgets against the real engine and a small pure-Python model of
the same rules, and compares every memory's visibility and causes after each step."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from surreal_store import NotFoundError, RecordId, Store, memory, provenance, runs

T = TypeVar("T")
_SOURCES = 3
_RUNS = int(__import__("os").environ.get("SM_RUNS", "500"))


class Model:
    """The rules, in plain Python. A cause is a distrusted source or memory; a memory's causes
    are the distrusted sources of it and of everything it derives from, the memories among
    those distrusted with cascade, and itself if distrusted at all."""

    def __init__(self) -> None:
        self.sources: dict[str, set[int]] = {}  # memory -> its sources
        self.parents: dict[str, set[str]] = {}  # memory -> the memories it derives from
        self.bad_sources: set[int] = set()
        self.cascading: set[str] = set()  # provenance.invalidate(memory=...)
        self.direct: set[str] = set()  # memory.invalidate(...)

    def upstream(self, m: str) -> set[str]:
        seen: set[str] = set()
        todo = [m]
        while todo:
            for p in self.parents[todo.pop()]:
                if p not in seen:
                    seen.add(p)
                    todo.append(p)
        return seen

    def causes(self, m: str) -> set[str]:
        up = self.upstream(m)
        found = {f"s{s}" for u in up | {m} for s in self.sources[u] if s in self.bad_sources}
        found |= {u for u in up | {m} if u in self.cascading}
        if m in self.direct:
            found.add(m)
        return found

    def hidden(self) -> set[str]:
        return {m for m in self.sources if self.causes(m)}


class Loop:
    """One event loop and one store for every run of the machine; each run works in a scope
    and a run of its own, so runs never see each other's memories."""

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


def _machine(engine: Loop) -> type[RuleBasedStateMachine]:
    store = engine.store
    counter = itertools.count()

    class Invalidation(RuleBasedStateMachine):
        memories = Bundle("memories")

        def __init__(self) -> None:
            super().__init__()
            self.model = Model()
            self.scope = f"sm-{uuid.uuid4().hex}"
            self.keys: dict[str, str] = {}  # model name -> memory key
            self.names: dict[str, str] = {}  # memory key -> model name
            run = engine.run(runs.create_run(store, spec_digest="ab" * 32, agent_name="machine"))
            engine.run(
                runs.append_events(
                    store, run_id=run.id, events=[("tool", {"i": i}) for i in range(_SOURCES)]
                )
            )
            self.run_id = run.id
            self.source_names = {
                str(provenance.RunTrace(run_id=run.id, seq=s + 1).record): f"s{s}"
                for s in range(_SOURCES)
            }

        def trace(self, s: int) -> provenance.RunTrace:
            return provenance.RunTrace(run_id=self.run_id, seq=s + 1)

        def name_of(self, cause: RecordId) -> str:
            if cause.table == "memory":
                return self.names[str(cause.key)]
            return self.source_names[str(cause)]

        @rule(
            target=memories,
            sources=st.sets(st.integers(0, _SOURCES - 1), max_size=2),
            parents=st.lists(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7]), max_size=2),
        )
        def remember(self, sources: set[int], parents: list[int]) -> str:
            existing = list(self.keys)
            chosen = {existing[i % len(existing)] for i in parents} if existing else set()
            name = f"m{next(counter)}"
            facts: list[Any] = [self.trace(s) for s in sorted(sources)]
            facts += [
                provenance.MemoryDerivation(parent=self.keys[p], how="derive") for p in chosen
            ]
            m = engine.run(memory.remember(store, content=name, scope=self.scope, provenance=facts))
            self.keys[name], self.names[m.id] = m.id, name
            self.model.sources[name] = set(sources)
            self.model.parents[name] = chosen
            return name

        @rule(m=memories, s=st.integers(0, _SOURCES - 1))
        def attach_source(self, m: str, s: int) -> None:
            if m not in self.keys:
                return
            engine.run(provenance.attach(store, memory=self.keys[m], sources=[self.trace(s)]))
            self.model.sources[m].add(s)

        @rule(child=memories, parent=memories)
        def attach_parent(self, child: str, parent: str) -> None:
            # Only derive from an older memory: the graph stays acyclic, as real lineage is.
            if child not in self.keys or parent not in self.keys:
                return
            if int(parent[1:]) >= int(child[1:]):
                return
            fact = provenance.MemoryDerivation(parent=self.keys[parent], how="derive")
            engine.run(provenance.attach(store, memory=self.keys[child], sources=[fact]))
            self.model.parents[child].add(parent)

        @rule(s=st.integers(0, _SOURCES - 1))
        def invalidate_source(self, s: int) -> None:
            engine.run(provenance.invalidate(store, source=self.trace(s), reason=f"bad s{s}"))
            self.model.bad_sources.add(s)

        @rule(s=st.integers(0, _SOURCES - 1))
        def restore_source(self, s: int) -> None:
            before = self.model.hidden()
            revealed = engine.run(provenance.restore(store, source=self.trace(s)))
            self.model.bad_sources.discard(s)
            assert {self.names[k] for k in revealed} == before - self.model.hidden()

        @rule(m=memories)
        def invalidate_cascade(self, m: str) -> None:
            if m not in self.keys:
                return
            engine.run(provenance.invalidate(store, memory=self.keys[m], reason=f"bad {m}"))
            self.model.cascading.add(m)

        @rule(m=memories)
        def invalidate_one(self, m: str) -> None:
            if m not in self.keys:
                return
            got = engine.run(memory.invalidate(store, memory=self.keys[m], reason=f"one {m}"))
            self.model.direct.add(m)
            assert got.invalidated

        @rule(m=memories, through_provenance=st.booleans())
        def restore_memory(self, m: str, through_provenance: bool) -> None:
            if m not in self.keys:
                return
            before = self.model.hidden()
            self.model.cascading.discard(m)
            self.model.direct.discard(m)
            if through_provenance:
                revealed = engine.run(provenance.restore(store, memory=self.keys[m]))
                assert {self.names[k] for k in revealed} == before - self.model.hidden()
            else:
                got = engine.run(memory.restore(store, memory=self.keys[m]))
                assert got.invalidated == (m in self.model.hidden())

        @precondition(lambda self: len(self.keys) > 0)
        @rule(m=consumes(memories))
        def forget(self, m: str) -> None:
            if m not in self.keys:
                return
            engine.run(memory.forget(store, memory=self.keys[m]))
            key = self.keys.pop(m)
            del self.names[key]
            del self.model.sources[m], self.model.parents[m]
            for parents in self.model.parents.values():
                parents.discard(m)
            self.model.cascading.discard(m)
            self.model.direct.discard(m)
            with pytest.raises(NotFoundError):
                engine.run(memory.restore(store, memory=key))

        @invariant()
        def same_as_the_model(self) -> None:
            rows = engine.run(
                store.query(
                    "SELECT id, invalidated_at, invalidated_causes, embedding, embedding_stash "
                    "FROM memory WHERE scope = $scope;",
                    dict,
                    scope=self.scope,
                )
            )
            assert len(rows) == len(self.keys)
            for row in rows:
                name = self.names[str(row["id"].key)]
                expected = self.model.causes(name)
                got = {self.name_of(c) for c in row.get("invalidated_causes", [])}
                assert got == expected, (name, got, expected)
                assert (row.get("invalidated_at") is not None) == bool(expected), name

        @invariant()
        def every_cause_is_recorded(self) -> None:
            wanted = {str(self.trace(s).record) for s in self.model.bad_sources}
            wanted |= {
                str(RecordId("memory", self.keys[m]))
                for m in self.model.cascading | self.model.direct
            }
            candidates = [self.trace(s).record for s in range(_SOURCES)]
            candidates += [RecordId("memory", k) for k in self.keys.values()]
            found = engine.run(
                store.query(
                    "SELECT VALUE source FROM $ids;",
                    RecordId,
                    ids=[RecordId("source_invalidation", [c]) for c in candidates],
                )
            )
            assert {str(f) for f in found} == wanted

    return Invalidation


@pytest.mark.slow
def test_overlapping_invalidations_match_the_model(engine: Loop) -> None:
    run_state_machine_as_test(
        _machine(engine),
        settings=settings(
            max_examples=_RUNS,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        ),
    )


def test_restoring_one_of_two_sources_keeps_the_memory_hidden(engine: Loop) -> None:
    """The issue's example: a memory citing S1 and S2, and one derived from it."""

    async def scenario() -> None:
        store = engine.store
        run = await runs.create_run(store, spec_digest="cd" * 32, agent_name="example")
        await runs.append_events(store, run_id=run.id, events=[("a", {}), ("b", {})])
        s1 = provenance.RunTrace(run_id=run.id, seq=1)
        s2 = provenance.RunTrace(run_id=run.id, seq=2)
        base = await memory.remember(store, content="both", provenance=[s1, s2])
        child = await memory.remember(
            store,
            content="child",
            provenance=[provenance.MemoryDerivation(parent=base.id, how="summarise")],
        )
        await provenance.invalidate(store, source=s1, reason="s1 lied")
        await provenance.invalidate(store, source=s2, reason="s2 lied")
        assert await provenance.restore(store, source=s1) == []
        for m in (base, child):
            got = await memory.get(store, memory=m.id)
            assert got.invalidated and got.invalidated_reason == "s1 lied"
            assert got.invalidated_causes == [s2.record]
        hits = await memory.recall(store, text="both child")
        assert hits == []
        assert sorted(await provenance.restore(store, source=s2)) == sorted([base.id, child.id])
        assert len(await memory.recall(store, text="both child")) == 2

    engine.run(scenario())


@pytest.mark.anyio
async def test_schema_013_carries_invalidations_made_before_it(tmp_path: Path) -> None:
    """A store invalidated under schema 012 (one cause per memory, none for a direct
    invalidation) gets its causes when 013 applies, and restores as the new rules say."""
    import shutil

    from surreal_store import default_schema_dir

    old = tmp_path / "schema-012"
    old.mkdir()
    for f in sorted(default_schema_dir().glob("*.surql")):
        if int(f.name[:3]) <= 12:
            shutil.copy(f, old)
    url = f"surrealkv://{tmp_path / 'store'}"
    async with Store(url, schema_dir=old) as store:
        run = await runs.create_run(store, spec_digest="ef" * 32, agent_name="old")
        await runs.append_events(store, run_id=run.id, events=[("a", {})])
        trace = provenance.RunTrace(run_id=run.id, seq=1)
        source = trace.record
        cascaded = await memory.remember(store, content="from the run")
        await provenance.attach(store, memory=cascaded.id, sources=[trace])
        direct = await memory.remember(store, content="distrusted by hand")
        untouched = await memory.remember(store, content="never distrusted")
        # What schema 012's code wrote for a cascade and for memory.invalidate.
        await store.execute(
            "UPSERT type::record('source_invalidation', [$s]) SET source = $s, reason = 'old', "
            "memories = 1; UPDATE $c SET invalidated_at = time::now(), invalidated_reason = "
            "'old', invalidated_cause = $s; UPDATE $d SET invalidated_at = time::now(), "
            "invalidated_reason = 'by hand', invalidated_by = 'ops';",
            s=source,
            c=RecordId("memory", cascaded.id),
            d=RecordId("memory", direct.id),
        )
    async with Store(url) as store:  # applies 013
        # Never hidden, so never given the new field: it reads as no cause.
        assert (await memory.get(store, memory=untouched.id)).invalidated_causes == []
        assert (await memory.invalidate(store, memory=untouched.id, reason="now")).invalidated
        assert (await memory.restore(store, memory=untouched.id)).invalidated_causes == []
        got = await memory.get(store, memory=cascaded.id)
        assert got.invalidated and got.invalidated_causes == [source]
        got = await memory.get(store, memory=direct.id)
        assert got.invalidated and got.invalidated_causes == [RecordId("memory", direct.id)]
        record = await store.query_required_single(
            "SELECT cascade, reason, by FROM ONLY $r;",
            dict,
            r=RecordId("source_invalidation", [RecordId("memory", direct.id)]),
        )
        assert record == {"cascade": False, "reason": "by hand", "by": "ops"}
        assert await provenance.restore(store, source=source) == [cascaded.id]
        assert not (await memory.restore(store, memory=direct.id)).invalidated
        from surreal_store import Migrator

        assert (await Migrator(store).drift()).ok


def test_forgetting_a_distrusted_parent_reveals_its_child_with_its_vector(engine: Loop) -> None:
    async def scenario() -> None:
        from surreal_store import Store

        async with Store("mem://") as store:
            embedder = memory.HashingEmbedder(16)
            await memory.declare_space(store, model=embedder.model, dimension=16)
            parent = await memory.remember(store, content="parent fact", embedder=embedder)
            child = await memory.remember(
                store,
                content="child summary",
                embedder=embedder,
                provenance=[provenance.MemoryDerivation(parent=parent.id, how="summarise")],
            )
            await provenance.invalidate(store, memory=parent.id, reason="wrong")
            assert await memory.recall(store, text="child summary", embedder=embedder) == []
            before = await memory.get_space(store)
            await memory.forget(store, memory=parent.id)
            got = await memory.get(store, memory=child.id, with_embedding=True)
            assert not got.invalidated and got.embedding is not None
            after = await memory.get_space(store)
            assert before is not None and after is not None
            assert after.unindexed == before.unindexed + 1
            hits = await memory.recall(store, text="child summary", embedder=embedder)
            assert [h.memory.id for h in hits] == [child.id]

    engine.run(scenario())
