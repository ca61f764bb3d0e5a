"""Tests against a SurrealDB server (``docker compose up -d``), skipped unless
``SURREAL_STORE_TEST_URL`` is set, e.g. ``ws://127.0.0.1:8000``. Credentials come from
``SURREAL_STORE_TEST_USERNAME`` / ``SURREAL_STORE_TEST_PASSWORD`` (default root / root)."""

from __future__ import annotations

import os
import uuid

import anyio
import pytest

from surreal_store import Migrator, Settings, Store, load_schema_files

URL = os.environ.get("SURREAL_STORE_TEST_URL")
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.server,
    pytest.mark.skipif(not URL, reason="SURREAL_STORE_TEST_URL is not set"),
]


def settings(database: str) -> Settings:
    return Settings.load(
        url=URL,
        namespace="surreal_store_test",
        database=database,
        username=os.environ.get("SURREAL_STORE_TEST_USERNAME", "root"),
        password=os.environ.get("SURREAL_STORE_TEST_PASSWORD", "root"),
    )


@pytest.fixture
def database() -> str:
    return "t_" + uuid.uuid4().hex[:12]


async def test_open_migrate_and_query(database: str) -> None:
    async with Store(settings=settings(database)) as store:
        status = await Migrator(store).check()
        assert status.ok
        assert (await Migrator(store).drift()).ok
        assert await store.query_required_single("RETURN 1 + 1", int) == 2


async def test_ten_separate_clients_migrate_each_file_once(database: str) -> None:
    applied: list[int] = []

    async def client() -> None:
        async with Store(settings=settings(database), check_schema=False) as store:
            result = await Migrator(store).migrate()
            applied.extend(f.version for f in result.applied)

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(client)
    assert sorted(applied) == [f.version for f in load_schema_files()]


async def test_concurrent_writers_lose_nothing(database: str) -> None:
    async with Store(settings=settings(database)) as store:
        await store.execute("CREATE counter:1 SET v = 0")

        async def writer() -> None:
            for _ in range(50):
                await store.execute("BEGIN; UPDATE counter:1 SET v += 1; COMMIT;")

        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(writer)
        assert await store.query_required_single("RETURN counter:1.v", int) == 400
