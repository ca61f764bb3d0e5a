from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest
import surrealdb

from surreal_store import (
    ChecksumMismatchError,
    MigrationLockedError,
    Migrator,
    NotFoundError,
    RecordId,
    SchemaError,
    SchemaFileError,
    SchemaTooNewError,
    Settings,
    Store,
    default_schema_dir,
    load_schema_files,
)
from surreal_store._migrate import definitions

pytestmark = pytest.mark.anyio

EXTRA = {
    "002_notes.surql": "DEFINE TABLE OVERWRITE note SCHEMAFULL;\n"
    "DEFINE FIELD OVERWRITE text ON note TYPE string;\n",
    "003_tags.surql": "DEFINE TABLE OVERWRITE tag SCHEMAFULL;\n"
    "DEFINE FIELD OVERWRITE name ON tag TYPE string;\n"
    "DEFINE INDEX OVERWRITE tag_name ON tag FIELDS name UNIQUE;\n",
}


@pytest.fixture
def core_schema(tmp_path: Path) -> Path:
    """Only the core file: these tests are about the migrator, not the domain schema."""
    target = tmp_path / "core-schema"
    target.mkdir()
    shutil.copy(default_schema_dir() / "001_core.surql", target)
    return target


@pytest.fixture
def schema3(core_schema: Path) -> Path:
    for name, text in EXTRA.items():
        (core_schema / name).write_text(text)
    return core_schema


async def records(store: Store) -> list[dict[str, Any]]:
    return await store.query("SELECT * FROM schema_migration ORDER BY version", dict)


async def snapshot(store: Store) -> tuple[Any, ...]:
    locks = await store.query("SELECT * FROM schema_lock", dict)
    return await definitions(store), await records(store), locks


async def test_apply_twice_changes_nothing(kv_url: str, schema3: Path) -> None:
    async with Store(kv_url, schema_dir=schema3) as store:
        first = await snapshot(store)
        assert [r["version"] for r in first[1]] == [1, 2, 3]
        again = await Migrator(store, schema_dir=schema3).migrate()
        assert again.applied == []
        assert await snapshot(store) == first
        info = await store.query_required_single("INFO FOR DB", dict)
    async with Store(kv_url, schema_dir=schema3) as store:  # re-open
        assert await snapshot(store) == first
        assert await store.query_required_single("INFO FOR DB", dict) == info


async def test_warm_check_is_one_round_trip(store: Store) -> None:
    before = store.stats.queries
    result = await Migrator(store).migrate()
    assert result.applied == [] and store.stats.queries == before + 1


async def test_newer_database_is_refused_and_left_unchanged(kv_url: str, schema3: Path) -> None:
    async with Store(kv_url, schema_dir=schema3) as store:
        pass
    # A future version of the code applied 004 as well.
    (schema3 / "004_future.surql").write_text("DEFINE TABLE OVERWRITE future SCHEMAFULL;\n")
    async with Store(kv_url, schema_dir=schema3) as store:
        before = await snapshot(store)
        assert [r["version"] for r in before[1]] == [1, 2, 3, 4]
    (schema3 / "004_future.surql").unlink()
    (schema3 / "002_notes.surql").write_text("DEFINE TABLE OVERWRITE note SCHEMALESS;\n")

    with pytest.raises(SchemaTooNewError, match="004_future"):
        async with Store(kv_url, schema_dir=schema3):
            pass  # pragma: no cover
    with pytest.raises(SchemaTooNewError):
        async with Store(kv_url, schema_dir=schema3, migrate=False):
            pass  # pragma: no cover
    async with Store(kv_url, schema_dir=schema3, check_schema=False) as store:
        migrator = Migrator(store, schema_dir=schema3)
        with pytest.raises(SchemaTooNewError):
            await migrator.migrate()
        with pytest.raises(SchemaTooNewError):
            await migrator.rebless("002")
        assert await snapshot(store) == before


async def test_tampered_file_is_refused_until_reblessed(kv_url: str, schema3: Path) -> None:
    async with Store(kv_url, schema_dir=schema3):
        pass
    path = schema3 / "002_notes.surql"
    # Line endings and trailing whitespace are not changes.
    path.write_text(path.read_text().replace("\n", "   \r\n"))
    async with Store(kv_url, schema_dir=schema3):
        pass
    path.write_text(
        "DEFINE TABLE OVERWRITE note SCHEMAFULL;\n"
        "DEFINE FIELD OVERWRITE text ON note TYPE string ASSERT $value != '';\n"
    )
    with pytest.raises(ChecksumMismatchError, match=r"002_notes\.surql"):
        async with Store(kv_url, schema_dir=schema3):
            pass  # pragma: no cover
    async with Store(kv_url, schema_dir=schema3, check_schema=False) as store:
        migrator = Migrator(store, schema_dir=schema3)
        reblessed = await migrator.rebless(path)
        assert reblessed is not None and reblessed.version == 2
        assert await migrator.rebless("002") is None  # already matches
        status = await migrator.check()
        assert status.ok
        record = await store.query_required_single("SELECT * FROM ONLY schema_migration:2", dict)
        assert record["reblessed_at"] is not None and len(record["previous_checksums"]) == 1
        # The edited definition took effect, in the same transaction as the new checksum.
        fields = await store.query_required_single("INFO FOR TABLE note", dict)
        assert "ASSERT" in fields["fields"]["text"]
        assert (await migrator.drift()).ok


@pytest.mark.parametrize("shared_lock", [True, False], ids=["one-store", "no-shared-lock"])
async def test_ten_concurrent_migrators_apply_each_file_once(
    tmp_path: Path, schema3: Path, shared_lock: bool
) -> None:
    async with surrealdb.AsyncSurreal(f"surrealkv://{tmp_path / 'kv'}") as conn:
        if shared_lock:
            stores = [Store("mem://", connection=conn, check_schema=False, schema_dir=schema3)]
        else:
            # Ten stores over one connection: each has its own in-process locks, so only the
            # database lock can keep them apart (as with ten clients of one server).
            stores = [
                Store("mem://", connection=conn, check_schema=False, schema_dir=schema3)
                for _ in range(10)
            ]
        for s in stores:
            await s.open()
        applied: list[int] = []

        async def run(i: int) -> None:
            result = await Migrator(stores[i % len(stores)], schema_dir=schema3).migrate()
            applied.extend(f.version for f in result.applied)

        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(run, i)
        assert sorted(applied) == [1, 2, 3]
        rows = await records(stores[0])
        assert [r["version"] for r in rows] == [1, 2, 3]
        assert await stores[0].query("SELECT * FROM schema_lock", dict) == []
        for s in stores:
            await s.aclose()


async def test_live_lock_is_not_stolen(schema3: Path) -> None:
    settings = Settings.load(url="mem://", migration_lock_timeout_s=0.5)
    async with Store(settings=settings, check_schema=False, schema_dir=schema3) as store:
        await store.execute(
            "DEFINE TABLE schema_lock SCHEMAFULL; DEFINE FIELD owner ON schema_lock TYPE string;"
            "DEFINE FIELD acquired_at ON schema_lock TYPE datetime;"
            "DEFINE FIELD expires_at ON schema_lock TYPE datetime;"
            "CREATE schema_lock:migrate SET owner = 'other-host:1', acquired_at = time::now(),"
            " expires_at = time::now() + 1h;"
        )
        lock = await store.query("SELECT * FROM schema_lock", dict)
        with pytest.raises(MigrationLockedError, match="other-host:1"):
            await Migrator(store, schema_dir=schema3).migrate()
        assert await store.query("SELECT * FROM schema_lock", dict) == lock
        assert await Migrator(store, schema_dir=schema3).applied() == []


async def test_lock_of_a_crashed_migrator_expires(schema3: Path) -> None:
    async with Store("mem://", check_schema=False, schema_dir=schema3) as store:
        await store.execute(
            "DEFINE TABLE schema_lock SCHEMAFULL; DEFINE FIELD owner ON schema_lock TYPE string;"
            "DEFINE FIELD acquired_at ON schema_lock TYPE datetime;"
            "DEFINE FIELD expires_at ON schema_lock TYPE datetime;"
            "CREATE schema_lock:migrate SET owner = 'crashed:1', acquired_at = time::now() - 2m,"
            " expires_at = time::now() - 1m;"
        )
        result = await Migrator(store, schema_dir=schema3).migrate()
        assert [f.version for f in result.applied] == [1, 2, 3]
        assert await store.query("SELECT * FROM schema_lock", dict) == []


async def test_lock_is_renewed_while_a_long_migration_runs(schema3: Path) -> None:
    (schema3 / "004_slow.surql").write_text(
        "DEFINE TABLE OVERWRITE slow SCHEMAFULL;\nSLEEP 2500ms;\n"
    )
    settings = Settings.load(url="mem://", migration_lock_ttl_s=1)
    async with Store(settings=settings, schema_dir=schema3, check_schema=False) as store:
        expiries: list[dt.datetime] = []

        async def watch() -> None:
            for _ in range(12):
                await anyio.sleep(0.25)
                try:
                    row = await store.query_single("SELECT * FROM ONLY schema_lock:migrate", dict)
                except NotFoundError:
                    continue  # a loaded machine: the migrator has not defined its lock table yet
                if row:
                    expiries.append(row["expires_at"])

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            result = await Migrator(store, schema_dir=schema3).migrate()
        assert [f.version for f in result.applied] == [1, 2, 3, 4]
        assert len(set(expiries)) >= 2, "the holder renewed its lock"


async def test_failing_file_leaves_nothing_behind(schema3: Path) -> None:
    (schema3 / "004_broken.surql").write_text(
        "DEFINE TABLE OVERWRITE half SCHEMAFULL;\nDEFINE FIELD x ON half TYPE int;\n"
        "THROW 'broken on purpose';\n"
    )
    async with Store("mem://", check_schema=False, schema_dir=schema3) as store:
        with pytest.raises(
            SchemaError, match=r"004_broken.surql \(statement 3\).*broken on purpose"
        ):
            await Migrator(store, schema_dir=schema3).migrate()
        assert [r["version"] for r in await records(store)] == [1, 2, 3]
        tables = (await store.query_required_single("INFO FOR DB", dict))["tables"]
        assert "half" not in tables and "tag" in tables
        assert await store.query("SELECT * FROM schema_lock", dict) == []


async def test_a_failing_file_among_pending_ones_stops_the_files_after_it(
    schema3: Path,
) -> None:
    """Pending files go to the engine together; one that fails leaves nothing behind, no file
    after it applies, and the error names it as when files go one at a time."""
    (schema3 / "002_notes.surql").write_text(
        "DEFINE TABLE OVERWRITE half SCHEMAFULL;\nTHROW 'broken on purpose';\n"
    )
    async with Store("mem://", check_schema=False, schema_dir=schema3) as store:
        with pytest.raises(
            SchemaError, match=r"002_notes.surql \(statement 2\).*broken on purpose"
        ):
            await Migrator(store, schema_dir=schema3).migrate()
        assert [r["version"] for r in await records(store)] == [1]
        tables = (await store.query_required_single("INFO FOR DB", dict))["tables"]
        assert "half" not in tables and "tag" not in tables and "schema_migration" in tables
        assert await store.query("SELECT * FROM schema_lock", dict) == []
        (schema3 / "002_notes.surql").write_text(EXTRA["002_notes.surql"])
        fixed = Migrator(store, schema_dir=schema3)
        assert [f.version for f in (await fixed.migrate()).applied] == [2, 3]
        assert [r["version"] for r in await records(store)] == [1, 2, 3]
        assert all(r["execution_ms"] >= 0 for r in await records(store))


async def test_drift_reports_added_missing_and_changed(store: Store) -> None:
    migrator = Migrator(store)
    assert (await migrator.drift()).ok
    await store.execute(
        "DEFINE FIELD extra ON schema_migration TYPE option<string>;"
        "REMOVE FIELD tool_version ON schema_migration;"
        "DEFINE FIELD OVERWRITE name ON schema_migration TYPE string;"
        "DEFINE TABLE stray SCHEMALESS;"
    )
    report = await migrator.drift()
    assert {(i.change, i.kind, i.name) for i in report.items} == {
        ("added", "field", "schema_migration.extra"),
        ("missing", "field", "schema_migration.tool_version"),
        ("changed", "field", "schema_migration.name"),
        ("added", "table", "stray"),
    }
    changed = report.of("changed")[0]
    assert changed.expected is not None and "ASSERT" in changed.expected
    assert changed.live is not None and "ASSERT" not in changed.live


async def test_dry_run_touches_nothing(schema3: Path) -> None:
    async with Store("mem://", check_schema=False, schema_dir=schema3) as store:
        before = await definitions(store)
        result = await Migrator(store, schema_dir=schema3).migrate(dry_run=True)
        assert result.dry_run and result.applied == []
        assert [f.label for f in result.plan] == [
            "001_core.surql",
            "002_notes.surql",
            "003_tags.surql",
        ]
        assert len(result.plan[2].statements) == 3
        assert await definitions(store) == before


async def test_out_of_order_file_is_refused(core_schema: Path) -> None:
    (core_schema / "003_tags.surql").write_text(EXTRA["003_tags.surql"])
    async with Store("mem://", schema_dir=core_schema) as store:
        (core_schema / "002_notes.surql").write_text(EXTRA["002_notes.surql"])
        with pytest.raises(SchemaFileError, match="out of order"):
            await Migrator(store, schema_dir=core_schema).migrate()


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("2_short.surql", "NNN_name"), ("002-dash.surql", "NNN_name"), ("001_again.surql", "also")],
)
def test_bad_schema_file_names(schema_copy: Path, name: str, fragment: str) -> None:
    (schema_copy / name).write_text("RETURN 1;")
    with pytest.raises(SchemaFileError, match=fragment):
        load_schema_files(schema_copy)


def test_schema_files_ship_inside_the_wheel(tmp_path: Path) -> None:
    builder = pytest.importorskip("hatchling.builders.wheel")
    import zipfile

    root = Path(__file__).resolve().parents[1]
    source = tmp_path / "src"
    shutil.copytree(root, source, ignore=shutil.ignore_patterns(".git", ".venv", "*cache*"))
    wheel = builder.WheelBuilder(str(source))
    built = next(wheel.build(directory=str(tmp_path / "dist"), versions=["standard"]))
    names = zipfile.ZipFile(built).namelist()
    for f in load_schema_files():
        assert f"surreal_store/_schema/{f.label}" in names

    # The installed layout finds its packaged copy.
    unpacked = tmp_path / "site"
    zipfile.ZipFile(built).extractall(unpacked)
    import subprocess
    import sys

    code = "from surreal_store import default_schema_dir as d; print(d())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(unpacked)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == str(unpacked / "surreal_store" / "_schema")


async def test_record_ids_of_migrations(store: Store) -> None:
    row = await store.query_required_single("SELECT id FROM ONLY schema_migration:1", dict)
    assert row["id"] == RecordId("schema_migration", 1)


async def test_a_stale_access_layer_is_applied_again(kv_url: str) -> None:
    """The database records which access layer it holds ($access_layer). One that is not this
    code's (an older access table; here, an edited one) is applied again by migrate, alone if
    no file is pending; until then a restricted session refuses the database."""
    from surreal_store import access, agents, commits

    async with Store(kv_url) as root:
        await agents.register(root, name="a", kind="bot", agent_id="a")
        await access.grant_agent(root, agent_id="a", secret="secret-of-a", scopes=["s"])
        await commits.commit(root, state={"x": 1}, message="m", author="o")
        assert (await Migrator(root).status()).access_layer_current
        await root.execute(
            "DEFINE PARAM OVERWRITE $access_layer VALUE 'an older one'; "
            "ALTER TABLE commit PERMISSIONS FULL;"
        )
    async with Store(kv_url, migrate=False) as root:
        status = await Migrator(root).status()
        assert not status.access_layer_current and not status.pending and not status.ok
        assert status.to_dict()["access_layer"] == "stale"
    with pytest.raises(SchemaError, match="access layer"):
        async with Store(kv_url, agent="a", agent_secret="secret-of-a"):
            pass  # pragma: no cover
    async with Store(kv_url, migrate=False) as root:
        result = await Migrator(root).migrate()
        assert result.applied == [] and result.access_layer
        assert (await Migrator(root).status()).ok
        assert not (await Migrator(root).drift()).items
        assert not (await Migrator(root).migrate()).access_layer  # nothing to do now
    async with Store(kv_url, agent="a", agent_secret="secret-of-a") as a:
        assert await a.query("SELECT * FROM commit", dict) == []
