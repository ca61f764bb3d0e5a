from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import anyio
import pytest
import surrealdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from surreal_store import (
    AlreadyExistsError,
    ConflictError,
    ConstraintError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    QuerySyntaxError,
    QueryTimeoutError,
    RecordId,
    ResultError,
    Settings,
    Store,
    StoreState,
    StoreStateError,
    ThrownError,
    ValidationError,
)

pytestmark = pytest.mark.anyio


class Item(BaseModel):
    id: RecordId
    name: str
    n: int


async def test_typed_query_helpers(store: Store) -> None:
    await store.execute(
        "DEFINE TABLE item SCHEMAFULL; DEFINE FIELD name ON item TYPE string;"
        "DEFINE FIELD n ON item TYPE int;"
        "INSERT INTO item $rows;",
        rows=[{"id": RecordId("item", i), "name": f"i{i}", "n": i} for i in range(3)],
    )
    rows = await store.query("SELECT * FROM item ORDER BY n", Item)
    assert [r.name for r in rows] == ["i0", "i1", "i2"]
    assert rows[0].id == RecordId("item", 0)

    one = await store.query_single("SELECT * FROM ONLY $id", Item, id=RecordId("item", 1))
    assert one is not None and one.n == 1
    assert await store.query_single("SELECT * FROM item WHERE n > 10", Item) is None
    with pytest.raises(ResultError, match="at most one row, got 3"):
        await store.query_single("SELECT * FROM item", Item)

    n = await store.query_required_single("RETURN count(SELECT * FROM item)", int)
    assert n == 3
    with pytest.raises(NotFoundError):
        await store.query_required_single("SELECT * FROM item WHERE n > 10", Item)
    with pytest.raises(ResultError, match="do not match Item"):
        await store.query("SELECT name FROM item", Item)


async def test_result_is_the_last_statement_before_commit(store: Store) -> None:
    rows = await store.query(
        "BEGIN; CREATE a:1 SET v = 1; CREATE a:2 SET v = 2; SELECT VALUE v FROM a ORDER BY v;"
        "COMMIT;",
        int,
    )
    assert rows == [1, 2]
    results = await store.execute("RETURN 1; RETURN 'two'; RETURN NONE")
    assert results == [1, "two", None]


async def test_third_statement_failure_names_statement_3(store: Store) -> None:
    with pytest.raises(QueryError) as info:
        await store.execute("RETURN 1; RETURN 2; THROW 'the third one'; RETURN 4")
    assert info.value.statement == 3
    assert info.value.statement_text == "THROW 'the third one'"
    assert "statement 3" in str(info.value)
    assert "the third one" in str(info.value)


async def test_failed_transaction_reports_its_cause(store: Store) -> None:
    await store.execute("DEFINE TABLE u SCHEMAFULL; DEFINE FIELD k ON u TYPE int;")
    with pytest.raises(ConstraintError) as info:
        await store.execute("BEGIN; CREATE u:1 SET k = 1; CREATE u:2 SET k = 'x'; COMMIT;")
    assert info.value.statement == 3
    assert await store.query("SELECT * FROM u", dict) == []  # nothing half-way


async def test_error_mapping(store: Store) -> None:
    await store.execute(
        "DEFINE TABLE c SCHEMAFULL; DEFINE FIELD v ON c TYPE int ASSERT $value >= 0;"
        "DEFINE INDEX cv ON c FIELDS v UNIQUE; CREATE c:1 SET v = 1;"
    )
    cases: list[tuple[str, type[Exception]]] = [
        ("SELEC oops", QuerySyntaxError),
        ("CREATE c:1 SET v = 2", AlreadyExistsError),
        ("CREATE c:2 SET v = 1", ConstraintError),  # unique index
        ("CREATE c:3 SET v = -1", ConstraintError),  # ASSERT
        ("CREATE c:4 SET v = 1, extra = 2", ConstraintError),  # SCHEMAFULL
        ("SELECT * FROM nosuchtable", NotFoundError),
        ("THROW 'rule broken'", ThrownError),
    ]
    for text, expected in cases:
        with pytest.raises(expected):
            await store.execute(text)


async def test_write_conflict_is_retried_and_succeeds(tmp_path: Path) -> None:
    # Two stores over one connection share no lock, so their writes can truly race. The slow
    # transaction loses the optimistic conflict and must be replayed by the store.
    async with (
        surrealdb.AsyncSurreal(f"surrealkv://{tmp_path / 'kv'}") as conn,
        Store("mem://", connection=conn) as slow,
        Store("mem://", connection=conn) as fast,
    ):
        await slow.execute("CREATE counter:1 SET v = 0, w = 0")

        async def slow_txn() -> None:
            await slow.execute("BEGIN; UPDATE counter:1 SET v += 1; SLEEP 300ms; COMMIT;")

        async def fast_write() -> None:
            await anyio.sleep(0.05)
            await fast.execute("UPDATE counter:1 SET w += 1")

        async with anyio.create_task_group() as tg:
            tg.start_soon(slow_txn)
            tg.start_soon(fast_write)
        row = await slow.query_required_single("SELECT v, w FROM ONLY counter:1", dict)
        assert row == {"v": 1, "w": 1}
        assert slow.stats.conflicts >= 1
        assert slow.stats.retries >= 1


async def test_conflict_in_non_atomic_query_is_not_replayed(tmp_path: Path) -> None:
    async with (
        surrealdb.AsyncSurreal(f"surrealkv://{tmp_path / 'kv'}") as conn,
        Store("mem://", connection=conn) as slow,
        Store("mem://", connection=conn) as fast,
    ):
        await slow.execute("CREATE counter:1 SET v = 0, w = 0; CREATE log:1 SET n = 0")

        async def slow_txn() -> None:
            # The first statement commits on its own: replaying would apply it twice.
            with pytest.raises(ConflictError):
                await slow.execute(
                    "UPDATE log:1 SET n += 1;"
                    "BEGIN; UPDATE counter:1 SET v += 1; SLEEP 300ms; COMMIT;"
                )

        async def fast_write() -> None:
            await anyio.sleep(0.05)
            await fast.execute("UPDATE counter:1 SET w += 1")

        async with anyio.create_task_group() as tg:
            tg.start_soon(slow_txn)
            tg.start_soon(fast_write)
        assert slow.stats.retries == 0
        assert await slow.query_required_single("RETURN log:1.n", int) == 1


async def test_constraint_violation_is_not_retried(store: Store) -> None:
    await store.execute("CREATE k:1")
    before = store.stats.queries
    with pytest.raises(AlreadyExistsError):
        await store.execute("CREATE k:1", idempotent=True)
    assert store.stats.queries == before + 1
    assert store.stats.retries == 0


@pytest.mark.parametrize("url_kind", ["mem", "surrealkv"])
async def test_concurrent_writers_lose_no_acknowledged_write(url_kind: str, tmp_path: Path) -> None:
    url = "mem://" if url_kind == "mem" else f"surrealkv://{tmp_path / 'kv'}"
    tasks, per_task = 10, 100
    acknowledged = 0
    async with Store(url) as store:
        await store.execute("CREATE counter:1 SET v = 0")

        async def writer() -> None:
            nonlocal acknowledged
            for _ in range(per_task):
                await store.execute("UPDATE counter:1 SET v += 1")
                acknowledged += 1

        async def reader() -> None:
            for _ in range(50):
                await store.query("SELECT * FROM counter", dict)

        async with anyio.create_task_group() as tg:
            for _ in range(tasks):
                tg.start_soon(writer)
            tg.start_soon(reader)
        value = await store.query_required_single("RETURN counter:1.v", int)
    assert acknowledged == tasks * per_task
    assert value == acknowledged


async def test_values_round_trip(store: Store) -> None:
    when = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
    value: dict[str, Any] = {
        "link": RecordId("commit", "abc"),
        "compound": RecordId("ev", ["run", 3]),
        "when": when,
        "span": dt.timedelta(seconds=90, microseconds=5),
        "blob": b"\x00\xffbin",
        "nested": {"list": [1, 2.5, "x", None]},
    }
    back = await store.query_required_single("RETURN $v", dict, v=value)
    assert back["link"] == value["link"]
    assert back["compound"] == value["compound"]
    assert back["when"] == when
    assert back["span"] == value["span"]
    assert back["blob"] == value["blob"]
    assert back["nested"] == {"list": [1, 2.5, "x", None]}
    assert await store.query("RETURN NULL", object) == []


async def test_a_lent_sdk_connection_answers_as_a_store_of_its_own() -> None:
    # A store given the SDK's own embedded connection sends through the store's codec, not
    # the SDK's: every value must come back the same as on a store that opened its files.
    when = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
    values: list[Any] = [
        RecordId("commit", "abc"),
        RecordId("ev", ["run", 3]),
        surrealdb.RecordID("x", 1),
        when,
        dt.timedelta(days=2, seconds=90, microseconds=5),
        b"\x00\xffbin",
        {"nested": {"list": [1, 2.5, "x", None, True]}, "big": 2**62, "neg": -(2**40)},
        "'; DELETE item; --",
    ]
    texts = [
        "RETURN d'2024-05-06T07:08:09.123456789Z'",
        "RETURN <decimal> '1.25'",
        "RETURN 1h30m",
        "RETURN [NONE, NULL, 1f, 10dec]",
        "CREATE item:1 SET name = 'a', n = 1 RETURN AFTER",
        "SELECT * FROM item",
    ]
    async with (
        surrealdb.AsyncSurreal("mem://") as conn,
        Store("mem://", connection=conn) as lent,
        Store("mem://") as own,
    ):
        for value in values:
            ours = await own.query_required_single("RETURN $v", object, v=value)
            assert await lent.query_required_single("RETURN $v", object, v=value) == ours
        for text in texts:
            assert await lent.query(text, object) == await own.query(text, object)
        with pytest.raises(QuerySyntaxError):
            await lent.execute("SELEC nothing")
        with pytest.raises(ThrownError):
            await lent.execute("THROW 'no'")


hostile = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40
) | st.sampled_from(["'; DELETE item; --", "$x", "⟩ OR true", "\\", "𝔘𝔫𝔦", "RETURN 1;"])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=hostile)
async def test_hostile_strings_round_trip_as_parameters(store: Store, text: str) -> None:
    row = await store.query_required_single(
        "UPSERT probe:1 CONTENT { text: $text, tags: [$text], meta: { k: $text } }", dict, text=text
    )
    assert row["text"] == text and row["tags"] == [text] and row["meta"] == {"k": text}


async def test_out_of_range_integer_is_refused_before_sending(store: Store) -> None:
    with pytest.raises(ValidationError):
        await store.execute("RETURN $n", n=2**63)


async def test_timeout_raises_query_timeout_and_is_not_retried() -> None:
    # No schema applied: its files' statements would run under the same 0.2 s limit, which a
    # busy machine can exceed.
    settings = Settings.load(url="mem://", query_timeout_s=0.2)
    async with Store(settings=settings, migrate=False, check_schema=False) as s:
        with pytest.raises(QueryTimeoutError):
            await s.query("SELECT * FROM (SLEEP 2s)", dict)  # a read: retryable in general
        assert s.stats.retries == 0


async def test_life_cycle(tmp_path: Path) -> None:
    store = Store("mem://")
    assert store.state is StoreState.UNOPENED
    with pytest.raises(StoreStateError):
        await store.execute("RETURN 1")
    async with store:
        # mypy narrowed state to UNOPENED above; entering the store changes it.
        assert store.state is StoreState.OPEN  # type: ignore[comparison-overlap]
        with pytest.raises(StoreStateError):
            await store.open()
    assert store.state is StoreState.CLOSED
    await store.aclose()  # idempotent
    with pytest.raises(StoreStateError):
        await store.execute("RETURN 1")


async def test_a_store_closes_only_what_it_opened(tmp_path: Path) -> None:
    async with surrealdb.AsyncSurreal("mem://") as conn:
        async with Store("mem://", connection=conn) as s:
            await s.execute("CREATE x:1")
        await conn.use("surreal_store", "main")
        assert await conn.query("SELECT VALUE id FROM x") == [[surrealdb.RecordID("x", 1)]]


async def test_stores_of_one_process_share_its_embedded_files(kv_url: str) -> None:
    # The files admit one connection per process: a second store on them (another tenant,
    # or the same one) shares it and its write lock; closing one leaves the other working.
    async with Store(kv_url) as first:
        await first.execute("CREATE note:1 SET text = 'main'")
        async with Store(kv_url) as same, Store(kv_url, tenant="acme") as other:
            assert same._write_lock is first._write_lock is other._write_lock
            assert await same.query("SELECT VALUE text FROM note", str) == ["main"]
            await other.execute("CREATE note:1 SET text = 'acme'")
            assert await other.query("SELECT VALUE text FROM note", str) == ["acme"]
            assert await same.query("SELECT VALUE text FROM note", str) == ["main"]
        assert await first.query("SELECT VALUE text FROM note", str) == ["main"]
    async with Store(kv_url, tenant="acme") as reopened:
        assert await reopened.query("SELECT VALUE text FROM note", str) == ["acme"]


async def test_another_sign_in_on_shared_embedded_files_gets_its_own_session(
    kv_url: str,
) -> None:
    # The files admit one connection per process; each sign-in is an engine session of its
    # own on it, checked by the engine (a wrong password is refused, never assumed from the
    # store already open), and each session is what it signed in as.
    from surreal_store import access

    async with Store(kv_url) as owner:
        await access.add_user(owner, name="ana", password="ana-password", role="viewer")
        await owner.execute("CREATE note:1 SET text = 'kept'")
        with pytest.raises(PermissionDeniedError):
            async with Store(kv_url, username="ana", password="wrong-password"):
                pass  # pragma: no cover
        async with Store(kv_url, username="ana", password="ana-password") as ana:
            assert ana._write_lock is owner._write_lock
            assert ana.signed_in_as.role == "VIEWER"
            assert await ana.query("SELECT VALUE text FROM note", str) == ["kept"]
            assert owner._session is not None and ana._session is not None
            assert owner._session is not ana._session
        assert owner.signed_in_as.kind == "anonymous"
        await owner.execute("UPDATE note:1 SET text = 'changed'")
        # The viewer's session ended with its store; the connection stays the owner's.
        assert owner._shared is not None and len(owner._shared.sessions) == 1


async def test_signed_in_sessions_survive_the_engine_reopen(
    kv_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A store reopens its embedded connection when the engine's log grows (a checkpoint):
    # every session is started again under its id, signed in by the engine as it was.
    from surreal_store import access, agents
    from surreal_store._engine import _embedded as _client

    monkeypatch.setattr(_client, "_WAL_LIMIT", 1 << 16)
    async with Store(kv_url) as owner:
        await access.add_user(owner, name="ana", password="ana-password", role="viewer")
        await agents.register(owner, name="scout", kind="bot", agent_id="scout")
        async with Store(kv_url, username="ana", password="ana-password") as ana:
            shared = owner._shared
            assert shared is not None
            for i in range(200):
                await owner.execute("CREATE note SET text = $text", text="x" * 2000 + str(i))
            assert shared.reopens >= 1
            assert await ana.query_required_single("RETURN count(SELECT * FROM note)", int) == 200
            # Past the client's check, on the reopened connection: the engine refuses it.
            assert shared.db is not None and ana._session is not None
            raw = await shared.db.query_raw(
                "UPDATE agent SET name = 'v'", None, session_id=ana._session.id
            )
            assert "permission_denied" in str(raw["result"][0]["result"])
            assert ana.signed_in_as.role == "VIEWER"
        assert await owner.query("SELECT VALUE name FROM agent", str) == ["scout"]


async def test_data_survives_reopen(kv_url: str) -> None:
    async with Store(kv_url) as s:
        await s.execute("CREATE note:1 SET text = 'kept'")
    async with Store(kv_url) as s:
        assert await s.query_required_single("RETURN note:1.text", str) == "kept"


async def test_an_answer_the_engine_cannot_give_is_not_called_unsent_or_retryable() -> None:
    """A query whose statements ran but whose answer the engine cannot encode (a regex) or we
    cannot decode (a datetime past Python's) is a ResultError: not a ValidationError ("nothing
    was sent") and not a TransportError ("may succeed if retried"), which would invite a
    second write."""
    async with Store("mem://") as s:
        with pytest.raises(ResultError, match="may have run"):
            await s.execute("CREATE note SET a = 1; RETURN /x/;")
        with pytest.raises(ResultError, match="may have run"):
            await s.execute("CREATE note SET a = 2; RETURN time::now() + 100000y;")
        assert sorted(await s.query("SELECT VALUE a FROM note", int)) == [1, 2]
        with pytest.raises(ValidationError, match="cannot send a value"):  # nothing sent
            await s.execute("CREATE note SET a = $a", a="\ud800")
        assert sorted(await s.query("SELECT VALUE a FROM note", int)) == [1, 2]
