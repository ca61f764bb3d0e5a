"""A SurrealDB server for the tests that also run on one (``SURREAL_STORE_TEST_URL``, e.g.
``ws://127.0.0.1:8000``); without it they are skipped."""

from __future__ import annotations

import os
import uuid

import pytest

__all__ = ["server_database"]


def server_database(prefix: str) -> dict[str, str]:
    """Store keyword arguments for a fresh database named ``prefix`` + a random suffix on the
    server, signed in as its root user (``SURREAL_STORE_TEST_USERNAME`` / ``_PASSWORD``,
    default root/root). Skips the calling test when no server is set."""
    url = os.environ.get("SURREAL_STORE_TEST_URL")
    if not url:
        pytest.skip("SURREAL_STORE_TEST_URL is not set")
    return {
        "url": url,
        "namespace": "surreal_store_test",
        "database": prefix + uuid.uuid4().hex[:12],
        "username": os.environ.get("SURREAL_STORE_TEST_USERNAME", "root"),
        "password": os.environ.get("SURREAL_STORE_TEST_PASSWORD", "root"),
    }
