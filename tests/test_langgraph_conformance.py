"""LangGraph's own checkpointer conformance suite (``langgraph-checkpoint-conformance``) on the
real embedded engine, in memory and on surrealkv (and on a server when SURREAL_STORE_TEST_URL
is set): every base and every extended capability."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _server import server_database

pytest.importorskip("langgraph.checkpoint.conformance")

from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import (
    BASE_CAPABILITIES,
    EXTENDED_CAPABILITIES,
)

from surreal_store import Settings, Store
from surreal_store.langgraph import SurrealCheckpointSaver

pytestmark = pytest.mark.anyio

# The suite's own counts (langgraph-checkpoint-conformance 0.0.2): 58 base, 23 extended tests.
BASE_TESTS = 58
EXTENDED_TESTS = 23


def _settings(engine: str, tmp_path: Path) -> Settings:
    if engine == "mem":
        return Settings.load(url="mem://")
    if engine == "surrealkv":
        return Settings.load(url=f"surrealkv://{tmp_path / 'store'}")
    return Settings.load(**server_database("lg_"))


@pytest.mark.parametrize("engine", ["mem", "surrealkv", "server"])
async def test_conformance(engine: str, tmp_path: Path) -> None:
    settings = _settings(engine, tmp_path)

    @checkpointer_test(name=f"SurrealCheckpointSaver[{engine}]")
    async def saver() -> AsyncIterator[SurrealCheckpointSaver]:
        async with Store(settings=settings) as store:
            yield SurrealCheckpointSaver(store)

    report = await validate(saver)
    report.print_report()
    failures = {name: r.failures for name, r in report.results.items() if r.failures}
    assert failures == {}
    assert report.passed_all_base()
    assert report.passed_all()
    base = sum(report.results[c.value].tests_passed for c in BASE_CAPABILITIES)
    extended = sum(report.results[c.value].tests_passed for c in EXTENDED_CAPABILITIES)
    assert (base, extended) == (BASE_TESTS, EXTENDED_TESTS)
