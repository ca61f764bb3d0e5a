"""LangChain's own standard tests for a VectorStore (``langchain-tests``'
``VectorStoreIntegrationTests``), unchanged, on the embedded engine: sync and async.

Each test gets a fresh store. The async tests run under pytest-asyncio (the standard tests are
written for it), on its own event loop: the vector store serves them from its background loop,
as it serves any async caller on another loop.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from surreal_store.langchain import SurrealVectorStore

# pytest-asyncio runs this module's async tests (strict mode: no other test of the suite). The
# mark reaches the suite's sync tests too, which pytest-asyncio then warns about: that one
# warning is let through here.
pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings(
        "ignore:The test <Function .*> is marked with '@pytest.mark.asyncio' but it is not an "
        "async function:pytest.PytestWarning"
    ),
]


class TestSurrealVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self) -> Iterator[VectorStore]:
        with SurrealVectorStore.from_url_sync("mem://", embedding=self.get_embeddings()) as vs:
            yield vs


@pytest.mark.server
@pytest.mark.skipif(
    not os.environ.get("SURREAL_STORE_TEST_URL"), reason="SURREAL_STORE_TEST_URL is not set"
)
class TestSurrealVectorStoreStandardOnServer(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self) -> Iterator[VectorStore]:
        url = os.environ["SURREAL_STORE_TEST_URL"]
        with SurrealVectorStore.from_url_sync(
            url, embedding=self.get_embeddings(), collection=f"standard-{os.urandom(8).hex()}"
        ) as vs:
            yield vs
            vs.delete()
