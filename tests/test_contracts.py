"""The seed's storage contracts (shared/SEED_NOTES.md), written once and run against every
backend: in-memory, the embedded file store, and a server when SURREAL_STORE_TEST_URL is set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _server import server_database

from surreal_store import (
    AlreadyExistsError,
    ConstraintError,
    NotFoundError,
    Settings,
    Store,
    branches,
    cas,
    commits,
    releases,
    runs,
)

pytestmark = pytest.mark.anyio
SPEC_A, SPEC_B = "a" * 64, "b" * 64


@pytest.fixture(params=["mem", "surrealkv", "server"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "mem":
        settings = Settings.load(url="mem://")
    elif request.param == "surrealkv":
        settings = Settings.load(url=f"surrealkv://{tmp_path / 'kv'}")
    else:
        settings = Settings.load(**server_database("c_"))
    async with Store(settings=settings) as store:
        yield store


# -- CAS -----------------------------------------------------------------------------------------


async def test_cas_put_returns_the_sha256_and_get_the_same_bytes(backend: Store) -> None:
    data = b"\x00\x01binary\xff" * 100
    digest = await cas.put(backend, data=data)
    assert digest == cas.digest_of(data)
    assert await cas.get(backend, digest=digest) == data


async def test_cas_same_content_same_digest_stored_once(backend: Store) -> None:
    assert await cas.put(backend, data=b"x") == await cas.put(backend, data=b"x")
    assert await backend.query_required_single("RETURN count(SELECT * FROM blob)", int) == 1


async def test_cas_absent_get_is_not_found_and_delete_a_no_op(backend: Store) -> None:
    absent = cas.digest_of(b"absent")
    with pytest.raises(NotFoundError):
        await cas.get(backend, digest=absent)
    await cas.delete(backend, digest=absent)


# -- ledger --------------------------------------------------------------------------------------


async def test_ledger_run_ids_are_unique(backend: Store) -> None:
    await runs.create_run(backend, spec_digest=SPEC_A, agent_name="a", run_id="r1")
    with pytest.raises(AlreadyExistsError):
        await runs.create_run(backend, spec_digest=SPEC_A, agent_name="a", run_id="r1")


async def test_ledger_new_run_is_running_without_summary(backend: Store) -> None:
    run = await runs.create_run(backend, spec_digest=SPEC_A, agent_name="a")
    assert (run.status, run.summary) == ("RUNNING", None)


async def test_ledger_events_read_in_seq_order_when_appended_out_of_order(backend: Store) -> None:
    await runs.create_run(backend, spec_digest=SPEC_A, agent_name="a", run_id="r")
    for seq in (2, 1, 3):
        await runs.append_event(backend, run_id="r", kind=f"e{seq}", seq=seq)
    assert [(e.seq, e.kind) for e in await runs.events(backend, run_id="r")] == [
        (1, "e1"),
        (2, "e2"),
        (3, "e3"),
    ]


async def test_ledger_appending_to_a_finished_run_fails(backend: Store) -> None:
    await runs.create_run(backend, spec_digest=SPEC_A, agent_name="a", run_id="r")
    await runs.complete(backend, run_id="r")
    with pytest.raises(ConstraintError):
        await runs.append_event(backend, run_id="r", kind="late")


async def test_ledger_completing_twice_fails(backend: Store) -> None:
    await runs.create_run(backend, spec_digest=SPEC_A, agent_name="a", run_id="r")
    await runs.complete(backend, run_id="r")
    with pytest.raises(ConstraintError):
        await runs.complete(backend, run_id="r")


async def test_ledger_lists_runs_optionally_by_spec_digest(backend: Store) -> None:
    await runs.create_run(backend, spec_digest=SPEC_A, agent_name="a", run_id="ra")
    await runs.create_run(backend, spec_digest=SPEC_B, agent_name="a", run_id="rb")
    assert {r.id for r in await runs.list_runs(backend)} == {"ra", "rb"}
    assert [r.id for r in await runs.list_runs(backend, spec_digest=SPEC_B)] == ["rb"]


# -- release registry ----------------------------------------------------------------------------


async def _promote(store: Store, agent: str, label: str) -> releases.Release:
    return await releases.promote(
        store, agent_name=agent, spec_digest=SPEC_A, version_label=label, promoted_by="ops"
    )


async def test_registry_promote_makes_the_current_release(backend: Store) -> None:
    await _promote(backend, "agent", "v1")
    assert (await releases.current(backend, agent_name="agent")).version_label == "v1"


async def test_registry_history_is_newest_first_and_rollback_reappends(backend: Store) -> None:
    for v in ("v1", "v2", "v3"):
        await _promote(backend, "agent", v)
    await releases.rollback(backend, agent_name="agent", promoted_by="ops")
    labels = [r.version_label for r in await releases.history(backend, agent_name="agent")]
    assert labels == ["v2", "v3", "v2", "v1"]


async def test_registry_rollback_fails_for_unknown_agent_or_single_release(backend: Store) -> None:
    with pytest.raises(NotFoundError):
        await releases.rollback(backend, agent_name="unknown", promoted_by="ops")
    await _promote(backend, "single", "v1")
    with pytest.raises(ConstraintError):
        await releases.rollback(backend, agent_name="single", promoted_by="ops")


async def test_registry_agents_are_independent(backend: Store) -> None:
    await _promote(backend, "one", "v1")
    await _promote(backend, "two", "w1")
    await _promote(backend, "one", "v2")
    assert [r.version_label for r in await releases.history(backend, agent_name="two")] == ["w1"]
    assert (await releases.current(backend, agent_name="one")).version_label == "v2"


# -- commits and branches ------------------------------------------------------------------------


async def test_the_same_commit_twice_is_recognised(backend: Store) -> None:
    first = await commits.commit(backend, state={"s": 1}, message="m", author="a", parents=[])
    again = await commits.commit(
        backend, state={"s": 1}, message="m", author="a", parents=[], expected_head=first.id
    )
    assert again == first


async def test_branch_default_cannot_be_deleted_and_unknown_is_not_found(backend: Store) -> None:
    await commits.commit(backend, state={"s": 1}, message="m", author="a")
    with pytest.raises(ConstraintError):
        await branches.delete(backend, name="main")
    with pytest.raises(NotFoundError):
        await branches.delete(backend, name="unknown")
