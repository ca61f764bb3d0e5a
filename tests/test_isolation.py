"""Scopes compare whole (the start of #20's isolation suite): memories in look-alike scopes
(a prefix, an extension, SQL patterns, NUL, case, whitespace, confusable letters, separators)
never surface in one another's recall, key lookups or forgetting."""

from __future__ import annotations

import pytest
from _hostile_values import LOOK_ALIKES

from surreal_store import Store, memory

pytestmark = pytest.mark.anyio


async def test_look_alike_scopes_never_leak(store: Store) -> None:
    e = memory.HashingEmbedder(64)
    await memory.declare_space(store, model=e.model, dimension=e.dimension)
    mine = {}
    for scope in LOOK_ALIKES:
        m = await memory.remember(
            store, content="the shared secret is blue", scope=scope, key="secret", embedder=e
        )
        mine[scope] = m.id
    assert len(set(mine.values())) == len(LOOK_ALIKES)  # one memory per scope
    for scope in LOOK_ALIKES:
        for mode in ("vector", "fulltext", "hybrid"):
            hits = await memory.recall(
                store, text="shared secret", embedder=e if mode != "fulltext" else None,
                mode=mode, scope=scope, k=50,
            )  # fmt: skip
            assert [h.memory.id for h in hits] == [mine[scope]], (scope, mode)
        found = await memory.by_key(store, key="secret", scope=scope)
        assert [m.id for m in found] == [mine[scope]], scope
        latest = await memory.latest_by_key(store, scope=scope)
        assert {k: m.id for k, m in latest.items()} == {"secret": mine[scope]}, scope
    # Forgetting by key in one scope touches that scope alone.
    for i, scope in enumerate(LOOK_ALIKES):
        receipt = await memory.forget(store, key="secret", scope=scope)
        assert receipt.memories == [mine[scope]], scope
        left = await memory.recall(store, text="shared secret", mode="fulltext", k=50)
        assert {h.memory.scope for h in left} == set(LOOK_ALIKES[i + 1 :])
