"""The run ledger, release registry and CI records: rules held by the database itself."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import anyio
import pytest
import surrealdb

from surreal_store import (
    AlreadyExistsError,
    ConflictError,
    ConstraintError,
    NotFoundError,
    QueryError,
    Settings,
    Store,
    ValidationError,
    ci,
    releases,
    runs,
)

pytestmark = pytest.mark.anyio
SPEC = "5" * 64


@pytest.mark.slow
async def test_50_tasks_x_200_appends_give_seqs_1_to_10000(kv_url: str) -> None:
    tasks, per_task = 50, 200
    acknowledged: list[int] = []
    async with Store(kv_url) as store:
        await runs.create_run(store, spec_digest=SPEC, agent_name="a", run_id="busy")

        async def appender(i: int) -> None:
            for j in range(per_task):
                ev = await runs.append_event(
                    store, run_id="busy", kind="tick", payload={"task": i, "j": j}
                )
                acknowledged.append(ev.seq)

        async with anyio.create_task_group() as tg:
            for i in range(tasks):
                tg.start_soon(appender, i)
        stored = await runs.events(store, run_id="busy")
    assert sorted(acknowledged) == list(range(1, tasks * per_task + 1))
    assert [e.seq for e in stored] == list(range(1, tasks * per_task + 1))
    assert len({(e.payload["task"], e.payload["j"]) for e in stored}) == tasks * per_task


async def test_racing_writers_without_a_shared_lock_never_duplicate_or_skip(
    tmp_path: Path,
) -> None:
    """Two stores over one connection (as two clients of a server): their appends race and
    conflict. Each append either lands with a unique, contiguous seq or fails with
    ConflictError having written nothing."""
    settings = Settings.load(url="mem://", max_attempts=12, retry_max_s=0.05)
    acknowledged: list[int] = []
    gave_up = 0
    async with surrealdb.AsyncSurreal(f"surrealkv://{tmp_path / 'kv'}") as conn:
        stores = [Store(settings=settings, connection=conn) for _ in range(2)]
        for s in stores:
            await s.open()
        await runs.create_run(stores[0], spec_digest=SPEC, agent_name="a", run_id="busy")

        async def appender(i: int) -> None:
            nonlocal gave_up
            for _ in range(40):
                try:
                    ev = await runs.append_event(stores[i % 2], run_id="busy", kind="tick")
                except ConflictError:
                    gave_up += 1
                else:
                    acknowledged.append(ev.seq)

        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(appender, i)
        stored = [e.seq for e in await runs.events(stores[0], run_id="busy")]
        assert sum(s.stats.conflicts for s in stores) > 0, "the stores really raced"
        for s in stores:
            await s.aclose()
    assert len(acknowledged) + gave_up == 400
    assert sorted(acknowledged) == stored == list(range(1, len(acknowledged) + 1))


async def test_out_of_order_explicit_seqs_read_in_order(store: Store) -> None:
    await runs.create_run(store, spec_digest=SPEC, agent_name="a", run_id="r")
    for seq in (2, 1, 3):
        await runs.append_event(store, run_id="r", kind=f"k{seq}", seq=seq)
    assert [e.seq for e in await runs.events(store, run_id="r")] == [1, 2, 3]
    with pytest.raises(AlreadyExistsError):
        await runs.append_event(store, run_id="r", kind="again", seq=2)
    assert (await runs.append_event(store, run_id="r", kind="next")).seq == 4


async def test_replay_from_a_seq_returns_exactly_the_later_events(store: Store) -> None:
    await runs.create_run(store, spec_digest=SPEC, agent_name="a", run_id="r")
    await runs.create_run(store, spec_digest=SPEC, agent_name="a", run_id="r-other")
    seqs = await runs.append_events(store, run_id="r", events=[("e", {"i": i}) for i in range(30)])
    await runs.append_events(store, run_id="r-other", events=[("e", {})] * 5)
    assert seqs == list(range(1, 31))
    later = await runs.events(store, run_id="r", from_seq=21)
    assert [e.seq for e in later] == list(range(21, 31))
    assert [e.payload["i"] for e in later] == list(range(20, 30))
    assert {e.run_id for e in later} == {"r"}
    assert [e.seq for e in await runs.events(store, run_id="r", from_seq=5, limit=3)] == [5, 6, 7]
    assert await runs.events(store, run_id="r", from_seq=31) == []
    with pytest.raises(NotFoundError):
        await runs.events(store, run_id="nope")


async def test_batches_are_all_or_nothing_and_idempotent(store: Store) -> None:
    await runs.create_run(store, spec_digest=SPEC, agent_name="a", run_id="r")
    first = await runs.append_events(
        store, run_id="r", events=[("a", {}), ("b", {})], idempotency_key="job-1"
    )
    again = await runs.append_events(
        store, run_id="r", events=[("a", {}), ("b", {})], idempotency_key="job-1"
    )
    assert first == again == [1, 2]
    one = await runs.append_event(store, run_id="r", kind="c", idempotency_key="job-2")
    assert (await runs.append_event(store, run_id="r", kind="c", idempotency_key="job-2")) == one
    with pytest.raises(ValidationError):
        await runs.append_events(store, run_id="r", events=[("ok", {}), ("bad", {"x": object()})])
    with pytest.raises(ValidationError):
        await runs.append_events(store, run_id="r", events=[("e", {})] * 1001)
    with pytest.raises(ValidationError):
        await runs.append_events(store, run_id="r", events=[])
    assert [e.seq for e in await runs.events(store, run_id="r")] == [1, 2, 3]
    await runs.cancel(store, run_id="r")
    with pytest.raises(ConstraintError, match="CANCELLED"):
        await runs.append_events(store, run_id="r", events=[("late", {})] * 10)
    assert len(await runs.events(store, run_id="r")) == 3


async def test_run_life_cycle_and_summary(store: Store) -> None:
    run = await runs.create_run(
        store,
        spec_digest=SPEC.upper(),
        agent_name="planner",
        git_sha="abc123",
        tags=["nightly"],
        run_id="life",
    )
    assert (run.status, run.summary, run.spec_digest) == ("RUNNING", None, SPEC)
    with pytest.raises(AlreadyExistsError):
        await runs.create_run(store, spec_digest=SPEC, agent_name="planner", run_id="life")
    await runs.append_events(store, run_id="life", events=[("e", {"v": None})] * 4)
    assert (await runs.events(store, run_id="life"))[0].payload == {"v": None}  # JSON null kept
    done = await runs.complete(store, run_id="life", final_state_digest="f" * 64)
    assert done.status == "COMPLETED"
    assert done.completed_at is not None
    assert done.summary is not None
    assert (done.summary.total_events, done.summary.success) == (4, True)
    with pytest.raises(ConstraintError, match="cannot change"):
        await runs.complete(store, run_id="life")  # completing twice
    with pytest.raises(ConstraintError):
        await runs.fail(store, run_id="life")
    with pytest.raises(NotFoundError):
        await runs.complete(store, run_id="ghost")
    failed = await runs.create_run(store, spec_digest=SPEC, agent_name="critic", run_id="f")
    assert (await runs.fail(store, run_id=failed.id)).summary.success is False  # type: ignore[union-attr]


async def test_list_runs_filters_and_pages(store: Store) -> None:
    other = "6" * 64
    for i in range(5):
        await runs.create_run(
            store, spec_digest=SPEC if i % 2 else other, agent_name=f"a{i % 2}", run_id=f"run{i}"
        )
    await runs.complete(store, run_id="run1")
    assert {r.id for r in await runs.list_runs(store, spec_digest=SPEC)} == {"run1", "run3"}
    assert {r.id for r in await runs.list_runs(store, agent_name="a0")} == {"run0", "run2", "run4"}
    assert [r.id for r in await runs.list_runs(store, status="COMPLETED")] == ["run1"]
    everything = await runs.list_runs(store)
    assert [r.id for r in everything] == ["run4", "run3", "run2", "run1", "run0"]
    pages = [await runs.list_runs(store, limit=2, offset=o) for o in (0, 2, 4)]
    assert [r.id for page in pages for r in page] == [r.id for r in everything]
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert await runs.list_runs(store, since=future) == []
    assert len(await runs.list_runs(store, until=future)) == 5


async def test_forbidden_ledger_writes_are_refused_by_the_database(store: Store) -> None:
    """Raw SurrealQL, bypassing the Python layer: every rule holds."""
    await runs.create_run(store, spec_digest=SPEC, agent_name="a", run_id="live")
    await runs.append_event(store, run_id="live", kind="e")
    await runs.create_run(store, spec_digest=SPEC, agent_name="a", run_id="done")
    await runs.complete(store, run_id="done")
    await runs.create_run(store, spec_digest=SPEC, agent_name="a", run_id="stopped")
    await runs.cancel(store, run_id="stopped")
    forbidden = [
        f"CREATE run:x SET spec_digest = '{SPEC}', agent_name = 'a', status = 'COMPLETED'",
        "UPDATE run:live SET status = 'PAUSED'",
        "UPDATE run:live SET status = 'COMPLETED'",  # no summary
        "UPDATE run:done SET status = 'RUNNING', summary = NONE, completed_at = NONE",
        "UPDATE run:done SET tags = ['rewritten']",
        "UPDATE run:stopped SET status = 'COMPLETED'",
        "UPDATE run:live SET agent_name = 'someone else'",
        "DELETE run:live",
        "CREATE run_event:['done', 1] SET run = run:done, seq = 1, kind = 'late'",
        "CREATE run_event:['stopped', 1] SET run = run:stopped, seq = 1, kind = 'late'",
        "CREATE run_event:['live', 9] SET run = run:live, seq = 8, kind = 'mismatched'",
        "CREATE run_event:['ghost', 1] SET run = run:ghost, seq = 1, kind = 'orphan'",
        "CREATE run_event:['live', 1] SET run = run:live, seq = 1, kind = 'duplicate'",
        "UPDATE run_event:['live', 1] SET kind = 'rewritten'",
        "DELETE run_event:['live', 1]",
        "DELETE run_event",
    ]
    for text in forbidden:
        with pytest.raises(QueryError):
            await store.execute(text)
    assert [e.kind for e in await runs.events(store, run_id="live")] == ["e"]
    assert (await runs.get_run(store, run_id="done")).status == "COMPLETED"


async def test_release_history_and_rollback(store: Store) -> None:
    for v in ("v1", "v2", "v3"):
        await releases.promote(
            store, agent_name="planner", spec_digest=SPEC, version_label=v, promoted_by="ops"
        )
    assert (await releases.current(store, agent_name="planner")).version_label == "v3"
    back = await releases.rollback(store, agent_name="planner", promoted_by="ops")
    assert (back.version_label, back.action, back.restores) == ("v2", "rollback", 2)
    history = await releases.history(store, agent_name="planner")
    assert [r.version_label for r in history] == ["v2", "v3", "v2", "v1"]  # the seed's example
    assert [r.seq for r in history] == [4, 3, 2, 1]
    second = await releases.rollback(store, agent_name="planner", promoted_by="ops")
    assert second.version_label == "v1"  # not v3: the effective history walks back
    assert (await releases.current(store, agent_name="planner")).version_label == "v1"
    with pytest.raises(ConstraintError, match="no earlier release"):
        await releases.rollback(store, agent_name="planner", promoted_by="ops")
    again = await releases.promote(
        store, agent_name="planner", spec_digest=SPEC, version_label="v4", promoted_by="ops"
    )
    assert again.supersedes == 5


async def test_release_rules(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await releases.rollback(store, agent_name="nobody", promoted_by="ops")
    with pytest.raises(NotFoundError):
        await releases.current(store, agent_name="nobody")
    await releases.promote(
        store, agent_name="solo", spec_digest=SPEC, version_label="v1", promoted_by="ops"
    )
    with pytest.raises(ConstraintError):
        await releases.rollback(store, agent_name="solo", promoted_by="ops")  # a single release
    await releases.promote(
        store, agent_name="other", spec_digest=SPEC, version_label="x1", promoted_by="ops"
    )
    assert [r.version_label for r in await releases.history(store, agent_name="solo")] == ["v1"]
    for text in (
        "UPDATE release:['solo', 1] SET version_label = 'forged'",
        "DELETE release:['solo', 1]",
        "DELETE release_head:solo",
        "UPDATE release_head:solo SET next_seq = 10",
    ):
        with pytest.raises(QueryError):
            await store.execute(text)


async def test_ci_records(store: Store) -> None:
    snap = await ci.save_snapshot(store, content={"files": {"a.py": "x"}, "n": 1})
    assert snap == ci.canonical_digest({"n": 1, "files": {"a.py": "x"}})
    assert await ci.save_snapshot(store, content={"n": 1, "files": {"a.py": "x"}}) == snap
    pipe = await ci.save_pipeline(store, spec={"steps": ["lint", "test"]})
    assert await ci.get_pipeline(store, digest=pipe) == {"steps": ["lint", "test"]}
    run = await ci.queue_run(store, snapshot=snap, pipeline=pipe)
    assert run.id == ci.run_id_for(snap, pipe)
    assert (await ci.queue_run(store, snapshot=snap, pipeline=pipe)).id == run.id
    assert (await ci.start_run(store, run_id=run.id)).started_at is not None
    done = await ci.finish_run(store, run_id=run.id, status="failed", result={"failed": ["t1"]})
    assert (done.status, done.result) == ("failed", {"failed": ["t1"]})
    with pytest.raises(ConstraintError, match="from failed to running"):
        await ci.start_run(store, run_id=run.id)
    other = await ci.queue_run(
        store, snapshot=snap, pipeline=await ci.save_pipeline(store, spec={})
    )
    with pytest.raises(ConstraintError, match="from queued to succeeded"):
        await ci.finish_run(store, run_id=other.id, status="succeeded")
    assert (await ci.cancel_run(store, run_id=other.id)).status == "cancelled"
    assert [r.id for r in await ci.list_runs(store, snapshot=snap)] == sorted(
        [run.id, other.id], key=[run.id, other.id].index
    )
    with pytest.raises(NotFoundError):
        await ci.queue_run(store, snapshot="0" * 64, pipeline=pipe)
    for text in (
        "CREATE ci_snapshot:abc SET content_json = '{}'",
        f"UPDATE ci_snapshot:{snap} SET content_json = '{{}}'",
        f"UPDATE ci_run:{run.id} SET status = 'running'",
        f"DELETE ci_run:{run.id}",
    ):
        with pytest.raises(QueryError):
            await store.execute(text)
