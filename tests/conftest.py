"""Shared fixtures. Every test runs against the real embedded engine (``mem://`` or
``surrealkv://`` in a temporary directory); none mocks the database."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from _fakes import FakeEmbedder
from hypothesis import settings

from surreal_store import Store, default_schema_dir

# No property test has a time limit per example: speed is measured in bench/, and on a loaded
# machine hypothesis's default 200 ms deadline failed examples that were right. Every other
# setting (the number of examples included) stays hypothesis's default or the test's own.
settings.register_profile("surreal-store", deadline=None)
settings.load_profile("surreal-store")


@pytest.fixture
def anyio_backend() -> str:
    # The SDK's embedded engine runs on asyncio only.
    return "asyncio"


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A clean environment: no SURREAL_STORE_* settings leak in from the machine, and the
    default data directory points into the test's temporary directory."""
    for name in list(os.environ):
        if name.startswith("SURREAL_STORE_") and name != "SURREAL_STORE_TEST_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return monkeypatch


@pytest.fixture(autouse=True)
def _unit_tests_open_no_store(request: pytest.FixtureRequest, env: pytest.MonkeyPatch) -> None:
    """``tests/unit/`` is pure code (the codec, SurrealQL helpers, matching, settings), run in
    seconds by ``pytest tests/unit``: a test there that opens a store fails."""
    if "unit" not in request.node.path.relative_to(_TESTS).parts[:1]:
        return

    async def refuse(self: Store, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("a unit test opened a store: move it to the engine tests")

    env.setattr(Store, "open", refuse)


_TESTS = Path(__file__).resolve().parent


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with Store("mem://") as s:
        yield s


@pytest.fixture
def kv_url(tmp_path: Path) -> str:
    return f"surrealkv://{tmp_path / 'store'}"


@pytest.fixture
def fake_embeddings() -> FakeEmbedder:
    """LangGraph's ``CharacterEmbeddings(dims=500)`` (its ported tests): texts sharing
    characters are close."""
    return FakeEmbedder("chars", 500, by="chars")


@pytest.fixture
def schema_copy(tmp_path: Path) -> Path:
    """A private copy of the packaged schema files, free to edit."""
    target = tmp_path / "schema"
    shutil.copytree(default_schema_dir(), target)
    return target


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The slow tests first: scripts/test hands tests to its workers a few at a time, in this
    # order, so the long ones start at once on every worker and the short ones fill in around
    # them; the workers then finish together, rather than one running long tests alone at the
    # end.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


# The embedded engine's runtime can abort the interpreter's shutdown (a tokio worker panics
# "in a function that cannot unwind", SIGABRT, after all output; docs/engine-notes.md, "an abort
# at exit"). That would turn a green run into exit code 134, so once pytest has reported,
# the session leaves with its own exit status and skips the teardown.
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if _EXIT in config.stash:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config.stash[_EXIT])


_EXIT = pytest.StashKey[int]()
