"""Transaction time is the store's (#35 H1): no session (an agent, an editor, the owner through
raw SurrealQL) rewrites an entity's lives, recorded_at or retracted_at, or deletes an
observation link; the API's deletes, re-creations, merges, retractions and forgetting still
work. Schema 028."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from surreal_store import (
    ImmutableError,
    InvariantError,
    PermissionDeniedError,
    RecordId,
    Store,
    StoreError,
    access,
    agents,
    graph,
    memory,
)

pytestmark = pytest.mark.anyio

SCOPE = "team"
AGENT = ("a", "secret-of-agent-a")
EDITOR = ("ed", "editor-password")


async def _world(tmp_path: Path) -> str:
    url = f"surrealkv://{tmp_path / 'store'}"
    async with Store(url) as root:
        await agents.register(root, name=AGENT[0], kind="bot", agent_id=AGENT[0])
        await access.grant_agent(root, agent_id=AGENT[0], secret=AGENT[1], scopes=[SCOPE])
        await access.add_user(root, name=EDITOR[0], password=EDITOR[1], role="editor")
        await graph.create_entities(
            root, entities=[graph.NewEntity(name=n) for n in ("Alive", "Reborn")], scope=SCOPE
        )
        await graph.add_observations(root, entity="Alive", contents=["one", "two"], scope=SCOPE)
        await graph.delete_observations(root, entity="Alive", contents=["two"], scope=SCOPE)
        # Reborn: deleted, then created again (one earlier life).
        await graph.delete_entities(root, names=["Reborn"], scope=SCOPE)
        await graph.create_entities(root, entities=[graph.NewEntity(name="Reborn")], scope=SCOPE)
        await graph.create_entities(root, entities=[graph.NewEntity(name="Gone")], scope=SCOPE)
        await graph.delete_entities(root, names=["Gone"], scope=SCOPE)
    return url


@asynccontextmanager
async def _session(url: str, who: str) -> AsyncIterator[Store]:
    if who == "agent":
        async with Store(url, agent=AGENT[0], agent_secret=AGENT[1]) as s:
            yield s
    elif who == "editor":
        async with Store(url, username=EDITOR[0], password=EDITOR[1]) as s:
            yield s
    else:
        async with Store(url) as s:
            yield s


_HISTORY = """
SELECT id, recorded_at, retracted_at, lives, observed FROM entity ORDER BY id;
SELECT * FROM observation ORDER BY id;
"""


def _e(name: str) -> str:
    return f"entity:`{graph.entity_id(SCOPE, name)}`"


FORGERIES = [
    # lives: rewritten, appended, removed
    f"UPDATE {_e('Reborn')} SET lives[0].recorded_at = d'2001-01-01T00:00:00Z'",
    f"UPDATE {_e('Reborn')} SET lives = [{{ recorded_at: d'2001-01-01T00:00:00Z', "
    "retracted_at: d'2001-02-01T00:00:00Z' }]",
    f"UPDATE {_e('Alive')} SET lives += {{ recorded_at: d'2001-01-01T00:00:00Z', "
    "retracted_at: d'2001-02-01T00:00:00Z' }",
    f"UPDATE {_e('Reborn')} SET lives = []",
    # recorded_at: back-dated, moved to the future, changed with a fake new life
    f"UPDATE {_e('Alive')} SET recorded_at = d'2001-01-01T00:00:00Z'",
    f"UPDATE {_e('Alive')} SET recorded_at = time::now() + 1d",
    f"UPDATE {_e('Gone')} SET lives += {{ recorded_at: recorded_at, retracted_at: retracted_at }},"
    " recorded_at = d'2001-01-01T00:00:00Z', retracted_at = NONE",
    f"UPDATE {_e('Gone')} SET lives += {{ recorded_at: recorded_at, retracted_at: retracted_at }},"
    " recorded_at = time::now() + 1d, retracted_at = NONE",
    # retracted_at: moved, cleared (undeleting without a new life), set in the future
    f"UPDATE {_e('Gone')} SET retracted_at = time::now()",
    f"UPDATE {_e('Gone')} SET retracted_at = NONE",
    f"UPDATE {_e('Alive')} SET retracted_at = time::now() + 1d",
    # observations: deleted, un-retracted, retracted in the future
    "DELETE observation",
    f"DELETE observation WHERE out = {_e('Alive')}",
    "UPDATE observation SET retracted_at = NONE",
    "UPDATE observation SET retracted_at = time::now() + 1d WHERE retracted_at = NONE",
]


@pytest.mark.parametrize("who", ["agent", "editor", "owner"])
async def test_no_session_forges_transaction_time(tmp_path: Path, who: str) -> None:
    url = await _world(tmp_path)
    async with Store(url) as root:
        before = repr(await root.execute(_HISTORY))
    async with _session(url, who) as s:
        for text in FORGERIES:
            with pytest.raises(StoreError) as caught:
                await s.execute(text)
            assert isinstance(
                caught.value, ImmutableError | InvariantError | PermissionDeniedError
            ), (text, caught.value)
    async with Store(url) as root:
        assert repr(await root.execute(_HISTORY)) == before


async def test_the_api_still_deletes_creates_again_merges_and_forgets(tmp_path: Path) -> None:
    url = await _world(tmp_path)
    async with _session(url, "agent") as a:
        # Deleting and creating again, twice: one more life each time, in order.
        for _ in range(2):
            assert await graph.delete_entities(a, names=["Reborn"], scope=SCOPE)
            (made,) = await graph.create_entities(
                a, entities=[graph.NewEntity(name="Reborn")], scope=SCOPE
            )
        rows = await a.query("SELECT VALUE lives FROM ONLY $e", dict, e=RecordId("entity", made.id))
        assert len(rows) == 3
        times = [t for life in rows for t in (life["recorded_at"], life["retracted_at"])]
        assert times == sorted(times) and times[-1] <= made.recorded_at
        # Removing an observation retracts it; forgetting its memory purges the link with it.
        await graph.add_observations(a, entity="Reborn", contents=["kept", "purged"], scope=SCOPE)
        await graph.delete_observations(a, entity="Reborn", contents=["kept"], scope=SCOPE)
        links = await a.query(
            "SELECT in.content AS c, retracted_at FROM observation WHERE out = $e ORDER BY c",
            dict,
            e=RecordId("entity", made.id),
        )
        assert [(r["c"], r["retracted_at"] is not None) for r in links] == [
            ("kept", True),
            ("purged", False),
        ]
        view = await graph.entity(a, name="Reborn", scope=SCOPE)
        assert view is not None and view.contents == ["purged"]
        (purged,) = [o.memory for o in view.observations]
        receipt = await memory.forget(a, memory=purged, scope=SCOPE)
        assert receipt.memories == [purged] and len(receipt.edges) == 1
        view = await graph.entity(a, name="Reborn", scope=SCOPE)
        assert view is not None and view.contents == []
    async with Store(url) as root:
        # No link is left behind pointing at the forgotten memory.
        dangling = "SELECT VALUE id FROM observation WHERE !record::exists(in)"
        assert await root.query(dangling, RecordId) == []
        merged = await graph.merge(
            root, keep="Alive", absorb="Reborn", reason="the same thing", scope=SCOPE
        )
        assert merged.absorbed.retracted_at is not None
        # The owner deletes an entity outright: its links go with it.
        await root.execute("DELETE $e", e=RecordId("entity", graph.entity_id(SCOPE, "Gone")))
