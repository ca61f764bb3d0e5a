"""LangGraph's own checkpointer conformance suite (``langgraph-checkpoint-conformance``) on the
real embedded engine, in memory and on surrealkv: every base and every extended capability."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

pytest.importorskip("langgraph.checkpoint.conformance")

from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import (
    BASE_CAPABILITIES,
    EXTENDED_CAPABILITIES,
)

from surreal_store import Store
from surreal_store.langgraph import SurrealCheckpointSaver

pytestmark = pytest.mark.anyio

# The suite's own counts (langgraph-checkpoint-conformance 0.0.2): 58 base, 23 extended tests.
BASE_TESTS = 58
EXTENDED_TESTS = 23


@pytest.mark.parametrize("engine", ["mem", "surrealkv"])
async def test_conformance(engine: str, tmp_path: Path) -> None:
    url = "mem://" if engine == "mem" else f"surrealkv://{tmp_path / 'store'}"

    @checkpointer_test(name=f"SurrealCheckpointSaver[{engine}]")
    async def saver() -> AsyncIterator[SurrealCheckpointSaver]:
        async with Store(url) as store:
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
