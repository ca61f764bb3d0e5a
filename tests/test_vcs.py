"""Version control for agent state: ids, CAS, commits, the graph, branches, agents."""

from __future__ import annotations

import random
from pathlib import Path

import anyio
import pytest
import surrealdb
from hypothesis import given
from hypothesis import strategies as st

from surreal_store import (
    AlreadyExistsError,
    ConflictError,
    ConstraintError,
    MergeConflictError,
    NotFoundError,
    RecordId,
    StaleError,
    Store,
    ValidationError,
    agents,
    branches,
    cas,
    commits,
)

pytestmark = pytest.mark.anyio
H = "a" * 64


# -- ids -----------------------------------------------------------------------------------------


def test_commit_id_is_deterministic_and_composite() -> None:
    one = commits.commit_id(state_hash=H, logic_hash="code", env_hash="lock")
    assert one == commits.commit_id(state_hash=H, logic_hash="code", env_hash="lock")
    assert len(one) == 64
    assert one != commits.commit_id(state_hash=H, logic_hash="code2", env_hash="lock")
    assert one != commits.commit_id(state_hash="b" * 64, logic_hash="code", env_hash="lock")
    assert one != commits.commit_id(state_hash=H, logic_hash="code", env_hash="lock2")
    assert one != commits.commit_id(state_hash=H, logic_hash="code", env_hash="lock", parents=[H])


def test_commit_id_is_collision_proof() -> None:
    assert commits.commit_id(state_hash=H, logic_hash="ab", env_hash="cd") != commits.commit_id(
        state_hash=H, logic_hash="a", env_hash="bcd"
    )
    assert commits.commit_id(state_hash=H, logic_hash=None) != commits.commit_id(
        state_hash=H, logic_hash="none"
    )
    assert commits.commit_id(state_hash=H, logic_hash=None) != commits.commit_id(
        state_hash=H, logic_hash=""
    )
    assert commits.commit_id(state_hash=H, logic_hash="x", env_hash=None) != commits.commit_id(
        state_hash=H, logic_hash=None, env_hash="x"
    )
    assert commits.commit_id(state_hash=H, parents=["p1", "p2"]) != commits.commit_id(
        state_hash=H, parents=["p2", "p1"]
    )


@given(
    st.tuples(st.none() | st.text(max_size=6), st.none() | st.text(max_size=6)),
    st.tuples(st.none() | st.text(max_size=6), st.none() | st.text(max_size=6)),
)
def test_commit_id_differs_whenever_components_differ(
    a: tuple[str | None, str | None], b: tuple[str | None, str | None]
) -> None:
    ida = commits.commit_id(state_hash=H, logic_hash=a[0], env_hash=a[1])
    idb = commits.commit_id(state_hash=H, logic_hash=b[0], env_hash=b[1])
    assert (ida == idb) == (a == b)


def test_state_hash_is_canonical() -> None:
    assert commits.state_hash({"b": 1, "a": [1, 2]}) == commits.state_hash({"a": [1, 2], "b": 1})
    with pytest.raises(ValidationError):
        commits.state_hash({"x": float("nan")})
    with pytest.raises(ValidationError):
        commits.state_hash({"x": object()})


# -- CAS -----------------------------------------------------------------------------------------


async def test_cas_contract(store: Store) -> None:
    data = bytes(range(256)) * 3  # binary, NULs included
    digest = await cas.put(store, data=data)
    assert digest == cas.digest_of(data)
    assert await cas.get(store, digest=digest) == data  # round trip
    assert await cas.put(store, data=data) == digest  # same content, same digest, no error
    assert await store.query_required_single("RETURN count(SELECT * FROM blob)", int) == 1
    assert await cas.get(store, digest=digest.upper()) == data  # normalised to lowercase
    absent = cas.digest_of(b"never stored")
    with pytest.raises(NotFoundError):
        await cas.get(store, digest=absent)
    assert not await cas.contains(store, digest=absent)
    await cas.delete(store, digest=absent)  # no-op
    await cas.delete(store, digest=digest)
    assert not await cas.contains(store, digest=digest)
    assert await cas.put(store, data=b"") == cas.digest_of(b"")


@pytest.mark.parametrize("bad", ["", "xyz", "a" * 63, "g" * 64, "a" * 65, "../" + "a" * 61])
async def test_cas_rejects_invalid_digests_before_querying(store: Store, bad: str) -> None:
    before = store.stats.queries
    for op in (cas.get, cas.contains, cas.delete):
        with pytest.raises(ValidationError):
            await op(store, digest=bad)
    assert store.stats.queries == before


async def test_blobs_are_guarded_by_the_database(store: Store) -> None:
    digest = await cas.put(store, data=b"x")
    with pytest.raises(ConstraintError, match="immutable"):
        await store.execute("UPDATE type::record('blob', $d) SET size = 5", d=digest)
    with pytest.raises(ConstraintError, match="lowercase SHA-256"):
        await store.execute("CREATE blob:notadigest SET data = <bytes>'x', size = 1")


# -- commits -------------------------------------------------------------------------------------


async def test_commit_round_trip_and_idempotence(store: Store) -> None:
    state = {"memory": ["a", "b"], "nested": {"k": None, "n": 1.5}, "ünï": "ß"}
    c = await commits.commit(store, state=state, message="m", author="me", logic_hash="code")
    assert c.generation == 1
    assert c.parents == []
    assert await commits.get_state(store, commit=c.id) == state
    assert c.state_hash == commits.state_hash(state)
    again = await commits.commit(
        store,
        state=state,
        message="other",
        author="x",
        parents=[],
        expected_head=c.id,
        logic_hash="code",
    )
    assert again.id == c.id
    assert again.message == "m"  # the existing commit, unchanged
    assert await store.query_required_single("RETURN count(SELECT * FROM commit)", int) == 1
    with pytest.raises(NotFoundError):
        await commits.get(store, commit="f" * 64)
    with pytest.raises(ValidationError):
        await commits.get(store, commit="not-a-commit")


async def test_parents_given_as_commits_or_ids_make_the_same_commit(store: Store) -> None:
    root = await commits.commit(store, state={"v": 0}, message="root", author="a")
    await branches.create(store, name="other", at=root.id)
    by_object = await commits.commit(store, state={"v": 1}, message="m", author="a", parents=[root])
    by_id = await commits.commit(
        store, state={"v": 1}, message="m", author="a", branch="other", parents=[root.id]
    )
    assert by_object.id == by_id.id
    assert by_object.generation == 2
    fork = await commits.commit(
        store, state={"v": 2}, message="f", author="a", branch="third", parents=[by_object]
    )
    kinds = await store.query(
        "SELECT VALUE kind FROM child_of WHERE in = $c", str, c=RecordId("commit", fork.id)
    )
    assert kinds == ["fork"]


async def test_commits_snapshots_and_edges_are_immutable(store: Store) -> None:
    c1 = await commits.commit(store, state={"v": 1}, message="1", author="a")
    c2 = await commits.commit(store, state={"v": 2}, message="2", author="a")
    cid = f"commit:{c1.id}"
    for text in (
        f"UPDATE {cid} SET message = 'rewritten'",
        f"DELETE {cid}",
        f"UPDATE snapshot:{c1.id} SET state_json = '{{}}'",
        f"DELETE snapshot:{c1.id}",
        "DELETE child_of",
        f"CREATE commit:{'e' * 64} SET state_hash = '{H}', message = '', author = '', "
        f"generation = 5, parents = [commit:{c2.id}]",
        f"CREATE commit:{'e' * 64} SET state_hash = '{H}', message = '', author = '', "
        f"generation = 1, parents = [commit:{'0' * 64}]",
        f"CREATE snapshot:{'e' * 64} SET commit = commit:{'e' * 64}, state_json = '{{}}', "
        "state_hash = 'wrong', size = 2",
    ):
        with pytest.raises((ConstraintError, NotFoundError)):
            await store.execute(text)
    assert await store.query_required_single("RETURN count(SELECT * FROM commit)", int) == 2
    assert await store.query_required_single("RETURN count(SELECT * FROM child_of)", int) == 1


async def test_stale_expected_head_writes_nothing(store: Store) -> None:
    c1 = await commits.commit(store, state={"v": 1}, message="1", author="a")
    c2 = await commits.commit(store, state={"v": 2}, message="2", author="a")
    with pytest.raises(StaleError) as info:
        await commits.commit(
            store, state={"v": 3}, message="3", author="a", parents=[c1.id], expected_head=c1.id
        )
    assert isinstance(info.value, ConflictError)
    assert not info.value.retryable
    # Explicit parents without expected_head: the branch must be at the first parent.
    with pytest.raises(StaleError):
        await commits.commit(store, state={"v": 3}, message="3", author="a", parents=[c1.id])
    assert (await branches.get(store, name="main")).head == c2.id
    assert await store.query_required_single("RETURN count(SELECT * FROM commit)", int) == 2


@pytest.mark.parametrize("shared_lock", [True, False], ids=["one-store", "racing-stores"])
async def test_concurrent_commits_on_one_head_exactly_one_wins(
    tmp_path: Path, shared_lock: bool
) -> None:
    async with surrealdb.AsyncSurreal(f"surrealkv://{tmp_path / 'kv'}") as conn:
        first = Store("mem://", connection=conn)
        await first.open()
        stores = [first] if shared_lock else [first, Store("mem://", connection=conn)]
        for s in stores[1:]:
            await s.open()
        base = await commits.commit(first, state={"n": 0}, message="base", author="a")
        outcomes: dict[int, object] = {}

        async def attempt(i: int) -> None:
            try:
                outcomes[i] = await commits.commit(
                    stores[i % len(stores)],
                    state={"n": i + 1},
                    message=f"c{i}",
                    author="a",
                    parents=[base.id],
                    expected_head=base.id,
                )
            except ConflictError as exc:
                outcomes[i] = exc

        async with anyio.create_task_group() as tg:
            for i in range(8):
                tg.start_soon(attempt, i)
        winners = [o for o in outcomes.values() if isinstance(o, commits.Commit)]
        losers = [o for o in outcomes.values() if isinstance(o, ConflictError)]
        assert len(winners) == 1
        assert len(losers) == 7
        assert (await branches.get(first, name="main")).head == winners[0].id
        count = (
            "RETURN [count(SELECT * FROM commit), count(SELECT * FROM snapshot), "
            "count(SELECT * FROM child_of)]"
        )
        assert await first.query(count, int) == [2, 2, 1]
        for s in stores:
            await s.aclose()


async def build_history(store: Store, n: int, seed: int = 7) -> list[commits.Commit]:
    """A main line of ``n`` commits with side branches merged back every so often."""
    rng = random.Random(seed)
    made: list[commits.Commit] = []
    head = await commits.commit(store, state={"i": 0}, message="root", author="a")
    made.append(head)
    side = 0
    while len(made) < n:
        if rng.random() < 0.08 and len(made) + 3 < n:
            side += 1
            name = f"side{side}"
            await branches.create(store, name=name, at=head.id)
            for j in range(2):
                made.append(
                    await commits.commit(
                        store,
                        state={"side": side, "j": j},
                        message=f"{name}/{j}",
                        author="a",
                        branch=name,
                    )
                )
            head = await commits.commit(
                store, state={"i": len(made)}, message=f"main {len(made)}", author="a"
            )
            made.append(head)
            head = await commits.merge(store, into="main", branch=name, author="a", resolve="ours")
            made.append(head)
        else:
            head = await commits.commit(
                store, state={"i": len(made)}, message=f"main {len(made)}", author="a"
            )
            made.append(head)
    return made


async def test_log_of_a_1000_commit_history_with_merges(store: Store) -> None:
    made = await build_history(store, 1000)
    assert sum(1 for c in made if len(c.parents) == 2) >= 20
    before = store.stats.queries
    history = await commits.log(store, branch="main")
    assert store.stats.queries - before <= 8  # one query per 256 levels, not per commit
    ids = [c.id for c in history]
    assert len(ids) == len(set(ids)) == len({c.id for c in made})
    position = {cid: i for i, cid in enumerate(ids)}
    for c in history:
        for p in c.parents:
            assert position[c.id] < position[p], "a child comes before its parents"
    assert history[0].id == made[-1].id

    limited = await commits.log(store, branch="main", limit=10)
    assert [c.id for c in limited] == ids[:10]
    first_parent = await commits.log(store, branch="main", first_parent=True)
    assert all(
        first_parent[i].parents[0] == first_parent[i + 1].id for i in range(len(first_parent) - 1)
    )
    assert first_parent[-1].parents == []
    assert len(first_parent) < len(history)


async def test_log_without_a_branch_is_the_default_branch_and_empty_before_any_commit(
    store: Store,
) -> None:
    assert await commits.log(store) == []  # nothing committed yet: an empty history
    with pytest.raises(NotFoundError, match="no branch 'main'"):
        await commits.log(store, branch="main")  # a branch named but missing
    c1 = await commits.commit(store, state={"n": 1}, message="one", author="a", branch="trunk")
    c2 = await commits.commit(store, state={"n": 2}, message="two", author="a", branch="trunk")
    await commits.commit(store, state={"n": 3}, message="three", author="a", branch="side")
    assert [c.id for c in await commits.log(store)] == [c2.id, c1.id]  # trunk came first
    await branches.set_default(store, name="side")
    assert [c.message for c in await commits.log(store, limit=1)] == ["three"]


async def test_merge_base_on_hand_built_dags(store: Store) -> None:
    r"""
    a - b - c - f          (main)
         \     /
          d - e            (topic)      and x - y unrelated (orphan)
    """
    a = await commits.commit(store, state={"n": "a"}, message="a", author="t")
    b = await commits.commit(store, state={"n": "b"}, message="b", author="t")
    await branches.create(store, name="topic", at=b.id)
    d = await commits.commit(store, state={"n": "d"}, message="d", author="t", branch="topic")
    e = await commits.commit(store, state={"n": "e"}, message="e", author="t", branch="topic")
    c = await commits.commit(store, state={"n": "c"}, message="c", author="t")
    assert (await commits.merge_base(store, a=c.id, b=e.id)).id == b.id  # type: ignore[union-attr]
    assert (await commits.merge_base(store, a=e.id, b=c.id)).id == b.id  # type: ignore[union-attr]
    assert (await commits.merge_base(store, a=c.id, b=a.id)).id == a.id  # type: ignore[union-attr]
    assert (await commits.merge_base(store, a=c.id, b=c.id)).id == c.id  # type: ignore[union-attr]
    f = await commits.merge(store, into="main", branch="topic", author="t", resolve="ours")
    assert f.parents == [c.id, e.id]
    assert (await commits.merge_base(store, a=f.id, b=d.id)).id == d.id  # type: ignore[union-attr]
    x = await commits.commit(store, state={"n": "x"}, message="x", author="t", branch="orphan")
    assert await commits.merge_base(store, a=x.id, b=f.id) is None

    # Criss-cross: two best common ancestors.
    await branches.create(store, name="p", at=f.id)
    await branches.create(store, name="q", at=f.id)
    p1 = await commits.commit(store, state={"p": 1}, message="p1", author="t", branch="p")
    q1 = await commits.commit(store, state={"q": 1}, message="q1", author="t", branch="q")
    p2 = await commits.commit(
        store, state={"p": 2}, message="p2", author="t", branch="p", parents=[p1.id, q1.id]
    )
    q2 = await commits.commit(
        store, state={"q": 2}, message="q2", author="t", branch="q", parents=[q1.id, p1.id]
    )
    bases = await commits.merge_bases(store, a=p2.id, b=q2.id)
    assert {c.id for c in bases} == {p1.id, q1.id}

    assert await commits.is_ancestor(store, ancestor=a.id, descendant=f.id)
    assert not await commits.is_ancestor(store, ancestor=f.id, descendant=a.id)
    assert not await commits.is_ancestor(store, ancestor=c.id, descendant=e.id)
    assert {k.id for k in await commits.children(store, commit=b.id)} == {c.id, d.id}
    assert (await commits.descendants(store, commit=e.id))[0].id == f.id
    assert {k.id for k in await commits.ancestors(store, commit=f.id)} == {
        a.id,
        b.id,
        c.id,
        d.id,
        e.id,
    }


async def test_diff_and_merge(store: Store) -> None:
    base = await commits.commit(
        store, state={"keep": 1, "both": {"x": 1}, "gone": True}, message="base", author="t"
    )
    await branches.create(store, name="other", at=base.id)
    ours = await commits.commit(
        store, state={"keep": 1, "both": {"x": 2}, "new": [1]}, message="ours", author="t"
    )
    d = await commits.diff(store, a=base.id, b=ours.id)
    assert d.added == {"/new": [1]}
    assert d.removed == {"/gone": True}
    assert d.changed == {"/both/x": (1, 2)}
    await commits.commit(
        store,
        state={"keep": 1, "both": {"x": 3}, "gone": True, "t": 1},
        message="theirs",
        author="t",
        branch="other",
    )
    with pytest.raises(MergeConflictError) as info:
        await commits.merge(store, into="main", branch="other", author="t")
    assert info.value.paths == ["/both/x"]
    assert (await branches.get(store, name="main")).head == ours.id  # nothing written
    merged = await commits.merge(store, into="main", branch="other", author="t", resolve="theirs")
    assert await commits.get_state(store, commit=merged.id) == {
        "keep": 1,
        "both": {"x": 3},
        "new": [1],
        "t": 1,
    }
    again = await commits.merge(store, into="main", branch="other", author="t")
    assert again.id == merged.id  # already merged: nothing to do
    custom = commits.merge_states({"a": 1}, {"a": 2}, {"a": 3}, resolve=lambda p, b, o, t: o + t)
    assert custom == {"a": 5}


# -- branches and agents -------------------------------------------------------------------------


async def test_branch_operations(store: Store) -> None:
    c1 = await commits.commit(store, state={"v": 1}, message="1", author="a")
    c2 = await commits.commit(store, state={"v": 2}, message="2", author="a")
    main = await branches.get(store, name="main")
    assert main.is_default
    assert main.head == c2.id
    feat = await branches.create(store, name="feature/x", at=c1.id)
    assert not feat.is_default
    with pytest.raises(AlreadyExistsError):
        await branches.create(store, name="feature/x", at=c1.id)
    with pytest.raises(NotFoundError):
        await branches.create(store, name="ghost", at="0" * 64)
    moved = await branches.move(store, name="feature/x", to=c2.id, expected=c1.id)
    assert moved.head == c2.id
    with pytest.raises(StaleError):
        await branches.move(store, name="feature/x", to=c1.id, expected=c1.id)
    forked = await branches.fork(store, commit=c1.id, names=["f1", "f2"])
    assert [b.name for b in forked] == ["f1", "f2"]
    with pytest.raises(AlreadyExistsError):
        await branches.fork(store, commit=c1.id, names=["f3", "f1"])
    assert [b.name for b in await branches.list_all(store)] == ["f1", "f2", "feature/x", "main"]

    with pytest.raises(ConstraintError, match="default branch cannot be deleted"):
        await branches.delete(store, name="main")
    with pytest.raises(ConstraintError):
        await store.execute("DELETE branch:main")  # the database refuses, not just Python
    with pytest.raises(NotFoundError):
        await branches.delete(store, name="nope")
    await branches.delete(store, name="f2")
    with pytest.raises(NotFoundError):
        await branches.get(store, name="f2")
    await branches.set_default(store, name="f1")
    assert [b.name for b in await branches.list_all(store) if b.is_default] == ["f1"]
    with pytest.raises(ConstraintError, match="already a default"):
        await store.execute("UPDATE branch:main SET is_default = true")
    await branches.delete(store, name="main")  # no longer the default


@pytest.mark.parametrize("name", ["", "a..b", "/x", "x/", "x.lock", "sp ace", "a;b", "-x", "x//y"])
async def test_invalid_branch_names_are_refused(store: Store, name: str) -> None:
    with pytest.raises(ValidationError):
        await commits.commit(store, state={}, message="m", author="a", branch=name)


async def test_agents(store: Store) -> None:
    a = await agents.register(
        store, name="planner", kind="llm", config={"model": "x"}, agent_id="planner-1"
    )
    assert await agents.get(store, agent_id="planner-1") == a
    b = await agents.register(store, name="critic", kind="llm")
    assert [x.name for x in await agents.list_all(store)] == ["critic", "planner"]
    assert b.config == {}
    with pytest.raises(AlreadyExistsError):
        await agents.register(store, name="again", kind="llm", agent_id="planner-1")
    with pytest.raises(NotFoundError):
        await agents.get(store, agent_id="nobody")
    with pytest.raises(ValidationError):
        await agents.get(store, agent_id="bad id!")


# -- properties of diff and merge ----------------------------------------------------------------

_scalar = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3)
_json = st.recursive(
    _scalar,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)
_state = st.dictionaries(st.text(max_size=3), _json, max_size=4)


@given(_state)
def test_a_state_has_no_diff_with_itself(s: dict[str, object]) -> None:
    assert commits.diff_states(s, s).empty


@given(_state, _state)
def test_merging_a_one_sided_change_takes_that_side(
    base: dict[str, object], changed: dict[str, object]
) -> None:
    assert commits.merge_states(base, changed, base) == changed
    assert commits.merge_states(base, base, changed) == changed
    assert commits.merge_states(base, changed, changed) == changed


@given(_state, _state)
def test_a_diff_describes_every_difference(a: dict[str, object], b: dict[str, object]) -> None:
    d = commits.diff_states(a, b)
    assert d.empty == (a == b and commits.canonical_json(a) == commits.canonical_json(b))
