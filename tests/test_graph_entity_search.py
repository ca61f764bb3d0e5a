"""Entity search through the entity index (#35): ``graph.search_entities`` answers from the
index (memory._recall_index._entity_index, following the entity table's change feed) exactly
as the engine's scan does, on random graphs and through every accident the index can meet.
Real embedded engine throughout."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surreal_store import Store, access, agents, graph, memory
from surreal_store.memory._recall_index import _entity_feed
from surreal_store.memory._recall_index._entity_index import EntityIndex

DIM = 8
WORDS = ["anvil", "rocket", "river", "engineer", "paints", "climbs", "service", "cats"]
NAMES = ["Acme", "Globex", "Ada", "Bob", "Cy", "Dee"]
TYPES = ["org", "person"]


def vec(seed: int) -> list[float]:
    return [float(x) for x in np.random.default_rng(seed).normal(size=DIM)]


def hits_of(hits: list[graph.EntityHit]) -> list[tuple[Any, ...]]:
    return [
        (
            h.entity.id,
            h.entity.summary,
            h.entity.aliases,
            h.text_rank,
            h.vector_rank,
            h.observation_rank,
            round(h.score, 9),
        )
        for h in hits
    ]


async def by_engine(db: Store, **kwargs: Any) -> list[graph.EntityHit]:
    """What the engine's scan answers (the index's door closed for this one call)."""
    real = _entity_feed.entity_index
    _entity_feed.entity_index = lambda db: None
    try:
        return await graph.search_entities(db, **kwargs)
    finally:
        _entity_feed.entity_index = real


async def same_answers(db: Store, **kwargs: Any) -> list[graph.EntityHit]:
    got = await graph.search_entities(db, **kwargs)
    assert hits_of(got) == hits_of(await by_engine(db, **kwargs)), kwargs
    return got


def index_of(db: Store) -> EntityIndex:
    index = _entity_feed.entity_index(db)
    assert index is not None
    return index


# -- random graphs, the index against the engine ------------------------------------------------


@pytest.fixture(scope="module")
def loop() -> Iterator[tuple[Any, Store]]:
    with anyio.from_thread.start_blocking_portal(backend="asyncio") as portal:
        store = Store("mem://")
        portal.call(store.__aenter__)
        portal.call(lambda: memory.declare_space(store, model="m", dimension=DIM))
        try:
            yield portal, store
        finally:
            portal.call(store.__aexit__, None, None, None)


_words = st.lists(st.sampled_from(WORDS), max_size=3).map(" ".join)
_op = st.one_of(
    st.tuples(
        st.just("create"),
        st.integers(0, 1),
        st.sampled_from(NAMES),
        _words,
        st.lists(st.sampled_from(WORDS), max_size=2),
        st.sampled_from(TYPES),
        st.one_of(st.none(), st.integers(0, 50)),
    ),
    st.tuples(st.just("delete"), st.integers(0, 1), st.sampled_from(NAMES)),
    st.tuples(st.just("update"), st.integers(0, 1), st.sampled_from(NAMES), _words),
    st.tuples(st.just("merge"), st.integers(0, 1), st.sampled_from(NAMES), st.sampled_from(NAMES)),
    st.tuples(st.just("raw"), st.integers(0, 1), st.sampled_from(NAMES), _words),
    st.tuples(st.just("observe"), st.integers(0, 1), st.sampled_from(NAMES), _words),
)
_query = st.tuples(
    st.one_of(st.none(), _words.filter(bool)),
    st.one_of(st.none(), st.integers(0, 50)),
    st.one_of(st.none(), st.just(["person"])),
    st.integers(0, 1),
    st.integers(1, 4),
)


async def _apply(db: Store, scopes: list[str], op: tuple[Any, ...]) -> None:
    kind, s, name = op[0], scopes[op[1]], op[2]
    try:
        if kind == "create":
            _, _, _, summary, aliases, type_, seed = op
            await graph.create_entities(
                db,
                scope=s,
                entities=[
                    graph.NewEntity(
                        name=name,
                        type=type_,
                        summary=summary,
                        aliases=aliases,
                        embedding=None if seed is None else vec(seed),
                    )
                ],
            )
        elif kind == "delete":
            await graph.delete_entities(db, names=[name], scope=s)
        elif kind == "update":
            await graph.update_entity(db, name=name, summary=op[3], scope=s)
        elif kind == "merge":
            await graph.merge(db, keep=name, absorb=op[3], reason="same", scope=s)
        elif kind == "raw":
            await db.execute(
                "UPDATE entity SET summary = $summary WHERE scope = $scope AND name = $name",
                summary=op[3],
                scope=s,
                name=name,
            )
        else:
            await graph.add_observations(db, entity=name, contents=[op[3] or "x"], scope=s)
    except Exception:  # an operation the graph refuses (absent, merged into itself) is skipped
        pass


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(ops=st.lists(_op, min_size=1, max_size=12), queries=st.lists(_query, min_size=1, max_size=4))
def test_the_index_answers_as_the_engine_on_random_graphs(
    loop: tuple[Any, Store], ops: list[tuple[Any, ...]], queries: list[tuple[Any, ...]]
) -> None:
    portal, db = loop
    scopes = [f"s-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"]

    async def run() -> None:
        for i, op in enumerate(ops):
            await _apply(db, scopes, op)
            if i % 4 == 3:  # searches between writes: the index follows them
                await same_answers(db, text="anvil rocket", scope=scopes[0])
        for text, seed, types, s, k in queries:
            if text is None and seed is None:
                text = "anvil"
            kwargs: dict[str, Any] = {"text": text, "types": types, "scope": scopes[s], "k": k}
            if seed is not None:
                kwargs["vector"] = vec(seed)
            got = await same_answers(db, **kwargs)
            assert all(h.entity.scope == scopes[s] for h in got)

    portal.call(run)


# -- following the table --------------------------------------------------------------------


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with Store("mem://") as s:
        await memory.declare_space(s, model="m", dimension=DIM)
        yield s


@pytest.mark.anyio
async def test_searches_follow_every_write_whoever_makes_it(store: Store) -> None:
    await graph.create_entities(
        store, entities=[graph.NewEntity(name=n, summary=f"{n} service") for n in NAMES]
    )
    assert len(await same_answers(store, text="service", k=10)) == len(NAMES)
    assert index_of(store).size == len(NAMES)
    # Raw SurrealQL: a summary changed, an entity retracted, one removed outright.
    await store.execute("UPDATE entity SET summary = 'a river' WHERE name = 'Ada'")
    await store.execute("UPDATE entity SET retracted_at = time::now() WHERE name = 'Bob'")
    await store.execute("DELETE entity WHERE name = 'Cy'")
    (ada,) = await same_answers(store, text="river")
    assert ada.entity.name == "Ada"
    names = {h.entity.name for h in await same_answers(store, text="service", k=10)}
    assert names == {"Acme", "Globex", "Dee"}
    # Deleted, created again, merged: each as the engine has it.
    await graph.delete_entities(store, names=["Dee"])
    assert "Dee" not in {h.entity.name for h in await same_answers(store, text="service")}
    await graph.create_entities(store, entities=[graph.NewEntity(name="Dee", summary="rocket")])
    assert [h.entity.name for h in await same_answers(store, text="rocket")] == ["Dee"]
    await graph.merge(store, keep="Acme", absorb="Globex", reason="same company")
    merged = await same_answers(store, text="globex")
    assert [h.entity.name for h in merged] == ["Acme"]  # Globex is an alias of Acme now
    # Another store on the same connection's files sees the same (the index is shared).
    assert index_of(store).size >= len(NAMES)


@pytest.mark.anyio
async def test_changes_to_other_tables_do_not_make_a_search_wait(store: Store) -> None:
    await graph.create_entities(store, entities=[graph.NewEntity(name="Ada", summary="river")])
    await graph.search_entities(store, text="river")
    index = index_of(store)
    before = index.versionstamp
    await memory.remember(store, content="unrelated note")
    (hit,) = await same_answers(store, text="river")
    assert hit.entity.name == "Ada" and index.versionstamp > before


@pytest.mark.anyio
async def test_a_table_defined_again_is_read_again(store: Store) -> None:
    await graph.create_entities(store, entities=[graph.NewEntity(name="Ada", summary="river")])
    assert len(await graph.search_entities(store, text="river")) == 1
    await store.execute(
        "REMOVE TABLE entity; DEFINE TABLE entity SCHEMALESS CHANGEFEED 30d;"
        "CREATE entity:x SET scope = 'default', name = 'Zed', type = '', aliases = [], "
        "summary = 'river', attributes = {}, lives = [], created_at = time::now(), "
        "updated_at = time::now(), recorded_at = time::now();"
    )
    found = await graph.search_entities(store, text="river")
    assert [h.entity.name for h in found] == ["Zed"]
    assert index_of(store).size == 1


@pytest.mark.anyio
async def test_a_restored_older_copy_is_answered_by_its_own_table(
    kv_url: str, tmp_path: Path
) -> None:
    path = Path(kv_url.removeprefix("surrealkv://"))
    async with Store(kv_url) as s:
        await graph.create_entities(s, entities=[graph.NewEntity(name="Ada", summary="river")])
        await graph.search_entities(s, text="river")
    backup = tmp_path / "backup"
    shutil.copytree(path, backup)
    async with Store(kv_url) as s:
        await graph.create_entities(s, entities=[graph.NewEntity(name="Bob", summary="river")])
        await graph.delete_entities(s, names=["Ada"])
        assert [h.entity.name for h in await same_answers(s, text="river")] == ["Bob"]
    shutil.rmtree(path)
    shutil.copytree(backup, path)
    async with Store(kv_url) as s:
        assert [h.entity.name for h in await same_answers(s, text="river")] == ["Ada"]
    # A new store at the deleted store's path: nothing of the old one is answered.
    shutil.rmtree(path)
    async with Store(kv_url) as s:
        assert await graph.search_entities(s, text="river") == []


@pytest.mark.anyio
async def test_a_build_that_fails_part_way_keeps_nothing_and_the_next_builds_whole(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await graph.create_entities(
        store, entities=[graph.NewEntity(name=f"E{i}", summary="river") for i in range(7)]
    )
    monkeypatch.setattr(_entity_feed, "_PAGE", 3)
    following = _entity_feed._NEXT.replace("LIMIT 2000", "LIMIT 3")
    first = _entity_feed._FIRST.replace("LIMIT 2000", "LIMIT 3")
    monkeypatch.setattr(_entity_feed, "_FIRST", first)
    monkeypatch.setattr(_entity_feed, "_NEXT", "THROW 'killed during the build';")
    with pytest.raises(Exception, match="killed during the build"):
        await graph.search_entities(store, text="river", k=10)
    index = index_of(store)
    assert index.versionstamp < 0
    # Meanwhile one of the entities the failed build took in is removed outright.
    await store.execute("DELETE entity WHERE name = 'E0'")
    monkeypatch.setattr(_entity_feed, "_NEXT", following)
    found = await same_answers(store, text="river", k=10)
    assert sorted(h.entity.name for h in found) == [f"E{i}" for i in range(1, 7)]
    assert int(index.alive[: index.size].sum()) == 6


@pytest.mark.anyio
async def test_a_failing_index_is_left_for_the_engine_and_built_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await graph.create_entities(store, entities=[graph.NewEntity(name="Ada", summary="river")])
    await graph.search_entities(store, text="river")

    def broken(*args: Any) -> Any:
        raise RuntimeError("a damaged index")

    monkeypatch.setattr(EntityIndex, "by_text", broken)
    (hit,) = await graph.search_entities(store, text="river")  # the engine answers
    assert hit.entity.name == "Ada" and index_of(store).versionstamp < 0
    monkeypatch.undo()
    await graph.create_entities(store, entities=[graph.NewEntity(name="Bob", summary="river")])
    assert len(await same_answers(store, text="river")) == 2
    assert index_of(store).size == 2


@pytest.mark.anyio
async def test_an_index_that_stopped_following_longer_than_the_feed_keeps_is_rebuilt(
    store: Store,
) -> None:
    await graph.create_entities(store, entities=[graph.NewEntity(name="Ada", summary="river")])
    await graph.search_entities(store, text="river")
    index = index_of(store)
    index.followed_at -= 31 * 86_400
    index.apply([{"id": index.ids[0], "scope": "default", "summary": "stale words"}])
    (hit,) = await same_answers(store, text="river")
    assert hit.entity.name == "Ada"


@pytest.mark.anyio
async def test_an_agent_never_sees_an_entity_of_a_scope_it_cannot_read(kv_url: str) -> None:
    async with Store(kv_url) as root:
        for name, scope in (("a", "team-a"), ("b", "team-b")):
            await agents.register(root, name=name, kind="bot", agent_id=name)
            secret = f"secret-of-{name}"
            await access.grant_agent(root, agent_id=name, secret=secret, scopes=[scope])
        for scope in ("team-a", "team-b"):
            await graph.create_entities(
                root,
                scope=scope,
                entities=[graph.NewEntity(name=f"{scope} Ada", summary="river secret")],
            )
        await graph.search_entities(root, text="river", scope="team-b")  # the owner's index
        async with Store(kv_url, agent="a", agent_secret="secret-of-a") as a:
            mine = await graph.search_entities(a, text="river secret", scope="team-a")
            assert [h.entity.name for h in mine] == ["team-a Ada"]
            assert await graph.search_entities(a, text="river secret", scope="team-b") == []
            assert await graph.search_entities(a, vector=vec(1), scope="team-b") == []
            # Its session cannot read the feed: it keeps no index, the engine compares.
            assert index_of(a).versionstamp < 0


def test_stored_embeddings_are_read_as_the_floats_written() -> None:
    """Embeddings are stored as CBOR arrays of doubles: read at once when they are, by cbor2
    otherwise (an integer among them, half floats), the same floats either way."""
    import cbor2

    from surreal_store.memory._recall_index._entity_index import _doubles, _vector

    rng = np.random.default_rng(3)
    for n in (1, 23, 24, 255, 256, 384, 70_000):
        v = [float(x) for x in rng.normal(size=n)]
        stored = cbor2.dumps(v)
        assert _doubles(stored) is not None
        got = _vector(stored)
        assert got is not None and np.array_equal(got, np.asarray(v, dtype=np.float32))
    for other in ([1, 2.5], [0.5, 1.5]):
        stored = cbor2.dumps(other, canonical=True)
        got = _vector(stored)
        assert got is not None and got.tolist() == [float(x) for x in other]
    assert _vector(cbor2.dumps([])) is None and _vector(None) is None
    assert _vector([0.25, 0.5]) is not None


@pytest.mark.anyio
async def test_searches_during_writes_see_every_write_made_before_them(store: Store) -> None:
    """Tasks write entities while others search: a search started after a write returns it,
    and once the writes end the index answers as the engine does."""
    done: list[str] = []

    async def writer(w: int) -> None:
        for i in range(6):
            name = f"W{w}-{i}"
            await graph.create_entities(
                store, entities=[graph.NewEntity(name=name, summary=f"river {name}")]
            )
            done.append(name)

    async def searcher() -> None:
        for _ in range(8):
            seen = set(done)
            found = await graph.search_entities(store, text="river", k=100)
            assert seen <= {h.entity.name for h in found}

    async with anyio.create_task_group() as tg:
        for w in range(2):
            tg.start_soon(writer, w)
        for _ in range(2):
            tg.start_soon(searcher)
    found = await same_answers(store, text="river", k=100)
    assert len(found) == 12
