"""The MCP server's knowledge-graph tools in process (the reference server's nine, its resource,
the store's own graph tools): the view they answer from follows every write, whoever makes
it, and the passage of valid time; refusals use the reference's words and write nothing.
tests/test_mcp_reference.py compares the nine with the real reference server."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("mcp.server.mcpserver")

from mcp import Client

from surreal_store import Store, graph, memory
from surreal_store.mcp import create_server
from surreal_store.mcp._graph_view import GraphView

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(store: Store) -> AsyncIterator[Client]:
    async with Client(create_server(store)) as c:
        yield c


async def structured(c: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await c.call_tool(tool, args)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return dict(result.structured_content)


async def refused(c: Client, tool: str, args: dict[str, Any]) -> str:
    result = await c.call_tool(tool, args)
    assert result.is_error, (tool, args, result.structured_content)
    text = result.content[0].text  # type: ignore[union-attr]
    assert isinstance(text, str)
    return text


async def from_database(store: Store, scope: str = graph.DEFAULT_SCOPE) -> GraphView:
    """The view built afresh from one read of the graph: what every answer must equal."""
    from surreal_store.mcp._graph_view import entities_of, relations_of

    sub = await graph.read_graph(store, scope=scope)
    view = GraphView()
    view.replace((), entities_of(sub), relations_of(sub))
    return view


def entity(name: str, type_: str = "t", observations: list[str] | None = None) -> dict[str, Any]:
    return {"name": name, "entityType": type_, "observations": observations or []}


async def test_create_entities_is_one_transaction(store: Store, client: Client) -> None:
    """create_entities writes its entities and their observations in one transaction (the
    database's change feed has one entry for it): a reader, another client or a subscription,
    sees both or neither, and a failure leaves neither. Before, the observations were a
    second transaction after the entities' (found by the breaker)."""
    from surreal_store._feeds import look, table_of

    ms = await store.query_required_single("RETURN time::millis(time::now());", int)
    await structured(client, "create_entities", {"entities": [entity("Old")]})
    since = ms << 16
    made = [entity("Ana", "person", ["tea", "jazz"]), entity("Bo", "robot", ["beeps"])]
    await structured(client, "create_entities", {"entities": [*made, entity("Old", "x", ["no"])]})
    entries = (await store.execute(look(since, 1000), idempotent=True))[0]
    graph_tables = {"entity", "observation", "memory"}
    writes = [{table_of(c) for c in e["changes"]} & graph_tables for e in entries]
    assert [w for w in writes if w] == [{"entity"}, graph_tables]
    assert (await structured(client, "read_graph", {}))["entities"] == [entity("Old"), *made]
    assert (await from_database(store)).read_graph()[0]["entities"] == [entity("Old"), *made]


async def test_the_resource_is_not_shadowed_by_the_memory_template(
    store: Store, client: Client
) -> None:
    await structured(client, "create_entities", {"entities": [entity("Ana", "person", ["tea"])]})
    resources = {str(r.uri) for r in (await client.list_resources()).resources}
    templates = {
        t.uri_template for t in (await client.list_resource_templates()).resource_templates
    }
    assert "memory://knowledge-graph" in resources
    assert "memory://{memory_id}" in templates
    got = (await client.read_resource("memory://knowledge-graph")).contents[0]
    assert got.mime_type == "application/json"
    assert json.loads(got.text) == {  # type: ignore[union-attr]
        "entities": [entity("Ana", "person", ["tea"])],
        "relations": [],
    }
    # The template still answers for a memory id: the observation is a memory.
    m = await memory.remember(store, content="tea")
    by_id = (await client.read_resource(f"memory://{m.id}")).contents[0]
    assert json.loads(by_id.text)["content"] == "tea"  # type: ignore[union-attr]


async def test_refusals_use_the_reference_words_and_write_nothing(client: Client) -> None:
    await structured(client, "create_entities", {"entities": [entity("A"), entity("B")]})
    relations = [
        {"from": "A", "to": "B", "relationType": "knows"},
        {"from": "A", "to": "Nobody", "relationType": "knows"},
    ]
    assert await refused(client, "create_relations", {"relations": relations}) == (
        "Entity with name Nobody not found"
    )
    items = [{"entityName": "A", "contents": ["x"]}, {"entityName": "Q", "contents": ["y"]}]
    assert await refused(client, "add_observations", {"observations": items}) == (
        "Entity with name Q not found"
    )
    after = await structured(client, "read_graph", {})
    assert after == {"entities": [entity("A"), entity("B")], "relations": []}
    # What the store cannot hold (an empty name) is refused, with the store's reason.
    text = await refused(client, "create_entities", {"entities": [entity("")]})
    assert text.startswith("ValidationError:") and "empty" in text
    await refused(client, "search_nodes", {})  # arguments that do not fit the schema


async def test_repeats_within_a_call_count_once(client: Client) -> None:
    made = await structured(
        client,
        "create_entities",
        {"entities": [entity("A", "t", ["x", "x", "y"]), entity("A", "u"), entity("B")]},
    )
    assert made == {"entities": [entity("A", "t", ["x", "y"]), entity("B")]}
    rel = {"from": "A", "to": "B", "relationType": "knows"}
    assert await structured(client, "create_relations", {"relations": [rel, rel]}) == {
        "relations": [rel]
    }
    assert await structured(client, "create_relations", {"relations": [rel]}) == {"relations": []}
    added = await structured(
        client,
        "add_observations",
        {
            "observations": [
                {"entityName": "A", "contents": ["z", "x", "z"]},
                {"entityName": "A", "contents": ["z", "w"]},
            ]
        },
    )
    assert added == {
        "results": [
            {"entityName": "A", "addedObservations": ["z"]},
            {"entityName": "A", "addedObservations": ["w"]},
        ]
    }


async def test_answers_follow_writes_made_elsewhere(store: Store, client: Client) -> None:
    """The view is derived: writes through the Python API (not this server) show at once."""
    assert await structured(client, "read_graph", {}) == {"entities": [], "relations": []}
    await graph.create_entities(store, entities=[graph.NewEntity(name="Ana", type="person")])
    await graph.create_entities(store, entities=[graph.NewEntity(name="Acme", type="org")])
    await graph.add_observations(store, entity="Ana", contents=["drinks green tea"])
    await graph.assert_facts(
        store, facts=[graph.NewFact(subject="Ana", predicate="works_at", object="Acme")]
    )
    found = await structured(client, "search_nodes", {"query": "GREEN"})
    assert found == {
        "entities": [entity("Ana", "person", ["drinks green tea"])],
        "relations": [{"from": "Ana", "to": "Acme", "relationType": "works_at"}],
    }
    # Hiding the observation's memory hides the observation; restoring brings it back.
    m = graph.observation_memory_id(graph.DEFAULT_SCOPE, "Ana", "drinks green tea")
    await memory.invalidate(store, memory=m, reason="wrong")
    assert (await structured(client, "search_nodes", {"query": "green"}))["entities"] == []
    await memory.restore(store, memory=m)
    assert len((await structured(client, "search_nodes", {"query": "green"}))["entities"]) == 1
    await graph.delete_entities(store, names=["Acme"])
    assert await structured(client, "open_nodes", {"names": ["Ana", "Acme"]}) == {
        "entities": [entity("Ana", "person", ["drinks green tea"])],
        "relations": [],
    }
    # Forgetting the memory removes it and its links for good: the observation is gone.
    await memory.forget(store, memory=m, reason="asked to")
    assert await structured(client, "open_nodes", {"names": ["Ana"]}) == {
        "entities": [entity("Ana", "person")],
        "relations": [],
    }


async def test_facts_come_and_go_with_their_valid_time(store: Store, client: Client) -> None:
    await structured(client, "create_entities", {"entities": [entity("A"), entity("B")]})
    now = dt.datetime.now(dt.UTC)
    soon = now + dt.timedelta(seconds=1.5)
    await graph.assert_facts(
        store,
        facts=[
            graph.NewFact(subject="A", predicate="was", object="B", valid_until=soon),
            graph.NewFact(subject="A", predicate="will_be", object="B", valid_from=soon),
        ],
    )
    kinds = [r["relationType"] for r in (await structured(client, "read_graph", {}))["relations"]]
    assert kinds == ["was"]
    await anyio.sleep((soon - dt.datetime.now(dt.UTC)).total_seconds() + 0.2)
    kinds = [r["relationType"] for r in (await structured(client, "read_graph", {}))["relations"]]
    assert kinds == ["will_be"]


async def test_delete_relations_removes_a_relation_whatever_its_valid_time(
    store: Store, client: Client
) -> None:
    """#35 M4: a fact that starts later is removed too (else it appears when the clock gets
    there); one that ended is history and stays."""
    await structured(client, "create_entities", {"entities": [entity("A"), entity("B")]})
    now = dt.datetime.now(dt.UTC)
    later, long_ago = now + dt.timedelta(days=30), now - dt.timedelta(days=300)
    f = graph.NewFact
    await graph.assert_facts(
        store,
        facts=[
            f(subject="A", predicate="knows", object="B"),
            f(subject="A", predicate="knows", object="B", value=2, valid_from=later),
            f(subject="A", predicate="knows", object="B", value=3, valid_from=long_ago,
              valid_until=long_ago + dt.timedelta(days=1)),
            f(subject="A", predicate="leads", object="B", valid_from=later),
        ],
    )  # fmt: skip
    rel = {"from": "A", "to": "B", "relationType": "knows"}
    assert (await structured(client, "read_graph", {}))["relations"] == [rel]
    await structured(
        client,
        "delete_relations",
        {"relations": [rel, {"from": "A", "to": "B", "relationType": "leads"}]},
    )
    assert (await structured(client, "read_graph", {}))["relations"] == []
    far = later + dt.timedelta(days=1)
    assert await graph.facts(store, entity="A", valid_at=far) == []
    ended = await graph.facts(store, entity="A", valid_at=long_ago)
    assert [x.value for x in ended] == [3]


NAMES = ["A", "B", "c", "Σ"]
CONTENTS = ["tea", "TEA", "σ", "x"]

api_step = st.one_of(
    st.tuples(st.just("create"), st.lists(st.sampled_from(NAMES), min_size=1, max_size=2)),
    st.tuples(st.just("delete"), st.lists(st.sampled_from(NAMES), min_size=1, max_size=2)),
    st.tuples(
        st.just("relate"),
        st.tuples(st.sampled_from(NAMES), st.sampled_from(NAMES), st.sampled_from("rs")),
    ),
    st.tuples(
        st.just("unrelate"),
        st.tuples(st.sampled_from(NAMES), st.sampled_from(NAMES), st.sampled_from("rs")),
    ),
    st.tuples(st.just("observe"), st.tuples(st.sampled_from(NAMES), st.sampled_from(CONTENTS))),
    st.tuples(st.just("unobserve"), st.tuples(st.sampled_from(NAMES), st.sampled_from(CONTENTS))),
    st.tuples(st.just("hide"), st.sampled_from(CONTENTS)),
    st.tuples(st.just("show"), st.sampled_from(CONTENTS)),
    st.tuples(st.just("forget"), st.sampled_from(CONTENTS)),
)


async def apply(store: Store, op: str, arg: Any) -> None:
    scope = graph.DEFAULT_SCOPE
    live = {e.name for e in (await graph.read_graph(store)).entities}
    if op == "create":
        await graph.create_entities(store, entities=[graph.NewEntity(name=n) for n in arg])
    elif op == "delete":
        await graph.delete_entities(store, names=arg)
    elif op in ("relate", "unrelate") and arg[0] in live and arg[1] in live:
        fact = graph.NewFact(subject=arg[0], predicate=arg[2], object=arg[1])
        if op == "relate":
            await graph.assert_facts(store, facts=[fact])
        else:
            await graph.retract_facts(store, facts=[fact])
    elif op == "observe" and arg[0] in live:
        await graph.add_observations(store, entity=arg[0], contents=[arg[1]])
    elif op == "unobserve":
        await graph.delete_observations(store, entity=arg[0], contents=[arg[1]])
    elif op in ("forget", "hide", "show"):
        # Every memory holding that content: each entity's observation is its own memory.
        ids = await store.query(
            "SELECT VALUE record::id(id) FROM memory WHERE scope = $s AND content = $c",
            str,
            s=scope,
            c=arg,
        )
        if op == "forget":  # deletes the memories and their observation links for good
            await memory.forget(store, memory=ids, reason="test")
        for m in ids if op != "forget" else []:
            try:
                if op == "hide":
                    await memory.invalidate(store, memory=m, reason="test")
                else:
                    await memory.restore(store, memory=m)
            except Exception as exc:  # not hidden, or hidden already
                if type(exc).__name__ not in ("NotFoundError", "ConstraintError"):
                    raise


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(st.tuples(api_step, st.sampled_from(NAMES + CONTENTS)), max_size=12))
def test_the_view_equals_the_database_after_any_writes(
    steps: list[tuple[tuple[str, Any], str]],
) -> None:
    async def run() -> None:
        async with Store("mem://") as store, Client(create_server(store)) as c:
            for (op, arg), query in steps:
                await apply(store, op, arg)
                want = await from_database(store)
                assert await structured(c, "read_graph", {}) == want.read_graph()[0]
                assert await structured(c, "search_nodes", {"query": query}) == want.search_nodes(
                    query
                )
                names = {"names": [query, *NAMES[:2]]}
                assert await structured(c, "open_nodes", names) == want.open_nodes(names["names"])

    anyio.run(run, backend="asyncio")


# -- the store's own graph tools ----------------------------------------------------------


async def test_the_graph_as_of_a_time_and_facts_with_their_times(client: Client) -> None:
    await structured(client, "create_entities", {"entities": [entity("Ana"), entity("Acme")]})
    rel = {"from": "Ana", "to": "Acme", "relationType": "works_at"}
    await structured(client, "create_relations", {"relations": [rel]})
    before = dt.datetime.now(dt.UTC)
    await anyio.sleep(0.01)
    await structured(client, "delete_relations", {"relations": [rel]})
    assert (await structured(client, "read_graph", {}))["relations"] == []
    then = await structured(client, "graph_as_of", {"known_at": before.isoformat()})
    assert then["relations"] == [rel]
    assert await structured(
        client, "graph_as_of", {"known_at": before.isoformat(), "query": "an"}
    ) == {
        "entities": [entity("Ana")],
        "relations": [rel],
    }
    history = (await structured(client, "entity_facts", {"entity": "Ana", "history": True}))[
        "facts"
    ]
    assert [(f["predicate"], f["retracted_at"] is not None) for f in history] == [
        ("works_at", True)
    ]
    assert (await structured(client, "entity_facts", {"entity": "Ana"}))["facts"] == []


async def test_a_fact_names_its_source_and_a_distrusted_source_hides_it(
    store: Store, client: Client
) -> None:
    from surreal_store import runs

    await runs.create_run(store, spec_digest="0" * 64, agent_name="agent", run_id="r1")
    await runs.append_event(store, run_id="r1", kind="tool_called", payload={"said": "hi"})
    await runs.append_event(store, run_id="r1", kind="tool_called", payload={"said": "lie"})
    await structured(client, "create_entities", {"entities": [entity("Ana"), entity("Acme")]})
    fact = {"subject": "Ana", "predicate": "works_at", "object": "Acme", "value": {"since": 2020}}
    made = (await structured(client, "assert_facts", {"facts": [fact], "source": "r1:1"}))["facts"]
    assert made[0]["value"] == {"since": 2020}
    sources = (await structured(client, "fact_sources", {"fact_id": made[0]["id"]}))["sources"]
    assert [(s["kind"], s["detail"]["payload"]) for s in sources] == [("run_event", {"said": "hi"})]
    # A source distrusted before a fact is recorded hides it from the start.
    receipt = await structured(
        client, "distrust_source", {"source": "r1:2", "reason": "the tool lied"}
    )
    assert receipt["facts"] == []
    lie = {"subject": "Acme", "predicate": "owns", "object": "Ana"}
    await structured(client, "assert_facts", {"facts": [lie], "source": "r1:2"})
    shown = (await structured(client, "read_graph", {}))["relations"]
    assert shown == [{"from": "Ana", "to": "Acme", "relationType": "works_at"}]
    hidden = await structured(client, "graph_as_of", {"include_invalidated": True})
    assert len(hidden["relations"]) == 2
    await structured(client, "trust_source", {"source": "r1:2"})
    # Whether the fact comes back is the invalidation cascade's to say (the trust work): the
    # answer is the database's either way.
    want = (await from_database(store)).read_graph()[0]
    assert await structured(client, "read_graph", {}) == want


# -- resource subscriptions ----------------------------------------------------------------

GRAPH_URI = "memory://knowledge-graph"


async def _next_uris(sub: Any, quiet: float = 0.0, wait: float = 5.0) -> set[str]:
    """The URIs told within ``wait`` seconds (the first), then within ``quiet`` more."""
    uris: set[str] = set()
    with anyio.fail_after(wait):
        uris.add((await sub.__anext__()).uri)
    with anyio.move_on_after(quiet):
        while True:
            uris.add((await sub.__anext__()).uri)
    return uris


async def _nothing_told(sub: Any, within: float = 0.8) -> None:
    with anyio.move_on_after(within):
        event = await sub.__anext__()
        raise AssertionError(f"told of {event} with nothing changed")


async def test_a_subscriber_is_told_when_the_graph_or_a_memory_changes_whoever_writes(
    store: Store, client: Client
) -> None:
    caps = client.session.server_capabilities
    assert caps is not None and caps.resources is not None and caps.resources.subscribe
    m = await memory.remember(store, content="a plain memory")
    async with client.listen(resource_subscriptions=[GRAPH_URI, f"memory://{m.id}"]) as sub:
        await _nothing_told(sub)
        # Another writer (the Python API on the same store) changes the graph.
        await graph.create_entities(store, entities=[graph.NewEntity(name="Ana", type="person")])
        assert await _next_uris(sub) == {GRAPH_URI}
        # This server's own tool.
        await structured(client, "create_entities", {"entities": [entity("Bo")]})
        assert await _next_uris(sub) == {GRAPH_URI}
        # Raw SurrealQL on a fact's ends, and an observation (a memory) added.
        await store.execute("UPDATE entity SET summary = 'renamed' WHERE name = 'Ana'")
        assert await _next_uris(sub) == {GRAPH_URI}
        await graph.add_observations(store, entity="Ana", contents=["likes tea"])
        assert GRAPH_URI in await _next_uris(sub, quiet=0.5)
        # The subscribed memory, hidden: its URI is told, and not the graph's.
        await memory.invalidate(store, memory=m.id, reason="doubt")
        assert await _next_uris(sub, quiet=0.5) == {f"memory://{m.id}"}
        # Another scope's graph is not this resource's.
        await graph.create_entities(store, entities=[graph.NewEntity(name="X")], scope="other")
        await _nothing_told(sub)
    # With the stream closed the server stops watching.
    await anyio.sleep(0.6)


async def test_handshake_era_clients_subscribe_as_to_the_reference_server(tmp_path: Path) -> None:
    """resources/subscribe over stdio (the reference server's era): ``surreal-store mcp``
    tells a subscribed client of a graph change, as the reference does after its write tools,
    and stops after resources/unsubscribe."""
    import os
    import sys

    from mcp.client.stdio import StdioServerParameters
    from mcp.shared.exceptions import MCPDeprecationWarning

    servers = {
        "ours": StdioServerParameters(
            command=sys.executable,
            args=["-m", "surreal_store", "mcp", "--url", f"surrealkv://{tmp_path / 'kv'}",
                  "--embedder", "none"],
            cwd=str(tmp_path), env=dict(os.environ),
        )
    }  # fmt: skip
    try:
        from _reference_server import Unavailable, reference_server

        script = reference_server()
        servers["reference"] = StdioServerParameters(
            command="node",
            args=[str(script)],
            cwd=str(tmp_path),
            env={**os.environ, "MEMORY_FILE_PATH": str(tmp_path / "memory.jsonl")},
        )
    except Unavailable:
        pass  # ours is still checked
    for name, params in servers.items():
        told: list[str] = []
        arrived = anyio.Event()

        async def collect(
            message: Any, told: list[str] = told, arrived: anyio.Event = arrived
        ) -> None:
            note = getattr(message, "root", message)
            if getattr(note, "method", None) == "notifications/resources/updated":
                told.append(str(note.params.uri))
                arrived.set()

        async with Client(params, mode="legacy", message_handler=collect) as c:
            caps = c.session.server_capabilities
            assert caps is not None and caps.resources is not None and caps.resources.subscribe
            with pytest.warns(MCPDeprecationWarning):
                await c.subscribe_resource(GRAPH_URI)
            await c.call_tool("create_entities", {"entities": [entity("Ana")]})
            with anyio.fail_after(5):
                await arrived.wait()
            assert told == [GRAPH_URI], name
            with pytest.warns(MCPDeprecationWarning):
                await c.unsubscribe_resource(GRAPH_URI)
            told.clear()
            await c.call_tool("create_entities", {"entities": [entity("Bo")]})
            await anyio.sleep(0.8)
            assert told == [], name


async def test_graph_as_of_answers_an_entity_as_it_was_known(store: Store, client: Client) -> None:
    await structured(client, "create_entities", {"entities": [entity("Ana", "person")]})
    before = await store.query_required_single("RETURN time::now();", dt.datetime)
    await graph.update_entity(store, name="Ana", type="robot")
    assert (await structured(client, "read_graph", {}))["entities"] == [entity("Ana", "robot")]
    for args in ({}, {"names": ["Ana"]}, {"query": "person"}):
        then = await structured(client, "graph_as_of", {"known_at": before.isoformat(), **args})
        assert then["entities"] == [entity("Ana", "person")], args


async def test_an_agents_subscriber_is_told_of_its_scopes_graph_only(kv_url: str) -> None:
    """An agent's session cannot read the change feeds: it compares the graph it reads."""
    from surreal_store import access, agents

    async with Store(kv_url) as root:
        await agents.register(root, name="a", kind="bot", agent_id="a")
        await access.grant_agent(root, agent_id="a", secret="secret-of-a-1", scopes=["team-a"])
        async with (
            Store(kv_url, agent="a", agent_secret="secret-of-a-1") as a,
            Client(create_server(a)) as c,
            c.listen(resource_subscriptions=[GRAPH_URI]) as sub,
        ):
            await graph.create_entities(root, entities=[graph.NewEntity(name="B")], scope="b")
            await _nothing_told(sub, within=1.5)
            await graph.create_entities(root, entities=[graph.NewEntity(name="A")], scope="team-a")
            assert await _next_uris(sub) == {GRAPH_URI}
        await anyio.sleep(1.2)  # the watch ends with the stream


async def test_a_page_of_other_tables_changes_does_not_hide_a_later_change(
    store: Store, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feed's LIMIT counts every table's transactions: a page filled by several tables'
    changes, none of them a page on its own, is not the present, and the change after it
    is seen (with one table's page at a time, ``Zed`` stayed out of the view)."""
    from surreal_store.mcp import _graph_feed

    monkeypatch.setattr(_graph_feed, "_FEED_PAGE", 4)
    assert await structured(client, "read_graph", {}) == {"entities": [], "relations": []}
    for i in range(3):
        await memory.remember(store, content=f"note {i}")
        await graph.create_entities(store, entities=[graph.NewEntity(name=f"E{i}", type="t")])
    await graph.create_entities(store, entities=[graph.NewEntity(name="Zed", type="t")])
    names = [e["name"] for e in (await structured(client, "read_graph", {}))["entities"]]
    assert sorted(names) == ["E0", "E1", "E2", "Zed"]


async def test_an_entitys_place_is_kept_whoever_writes(store: Store, client: Client) -> None:
    """Entities of one create keep the call's order (schema 033's position); a write that
    changes an entity's position within its life is refused, whoever writes; a deleted
    entity created again takes a new place, last."""
    from surreal_store import ImmutableError

    names = ["Zed", "Ana", "Mo"]
    await structured(client, "create_entities", {"entities": [entity(n) for n in names]})
    assert [e.name for e in (await graph.read_graph(store)).entities] == names
    with pytest.raises(ImmutableError, match="keeps its place"):
        await store.execute("UPDATE entity SET position = 0 WHERE name = 'Mo';", idempotent=False)
    await structured(client, "delete_entities", {"entityNames": ["Zed"]})
    await structured(client, "create_entities", {"entities": [entity("Zed")]})
    listed = (await structured(client, "read_graph", {}))["entities"]
    assert [e["name"] for e in listed] == ["Ana", "Mo", "Zed"]


async def test_reads_skip_the_feeds_only_while_nothing_was_written(kv_url: str) -> None:
    """On an embedded store the view answers without a look at the change feeds while the
    store has answered no query that may write since the last look (every query of the
    process goes through the count, and no other process can open the files): a write by
    another store of the process on the same files, raw SurrealQL, or a write abandoned
    while the engine may still commit it (after which every answer looks again) are all
    seen by the next read."""
    async with Store(kv_url) as store, Client(create_server(store)) as c:
        await structured(c, "create_entities", {"entities": [entity("Ana", "person")]})
        await structured(c, "search_nodes", {"query": "ana"})
        before = store.stats.queries
        for _ in range(3):
            assert len((await structured(c, "search_nodes", {"query": "ana"}))["entities"]) == 1
        assert store.stats.queries == before  # nothing written: no look
        async with Store(kv_url) as other:  # another store of this process, the same files
            await graph.create_entities(other, entities=[graph.NewEntity(name="Anabel", type="x")])
        found = await structured(c, "search_nodes", {"query": "ana"})
        assert [e["name"] for e in found["entities"]] == ["Ana", "Anabel"]
        await store.execute("UPDATE entity SET type = 'robot' WHERE name = 'Ana';")
        found = await structured(c, "open_nodes", {"names": ["Ana"]})
        assert found["entities"] == [entity("Ana", "robot")]
        # A write abandoned while the engine runs it may commit later: looks resume for good.
        with anyio.move_on_after(0.1) as abandoned:
            await store.execute("SLEEP 300ms; UPDATE entity SET type = 'late' WHERE name = 'Ana';")
        assert abandoned.cancelled_caught and store.write_mark() is None
        await anyio.sleep(0.5)
        found = await structured(c, "open_nodes", {"names": ["Ana"]})
        assert found == (await from_database(store)).open_nodes(["Ana"])
        before = store.stats.queries
        await structured(c, "read_graph", {})
        assert store.stats.queries > before
