"""The MCP memory server, through the MCP SDK's own client: in-process (every tool, the walk
from a recall hit to its lineage and the decisions that used it, bad arguments, resources, a
server without an embedder), and once over stdio as a subprocess (``surreal-store mcp``)."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("mcp.server.mcpserver")

from _reference_server import NINE
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from surreal_store import Store, ValidationError, memory
from surreal_store.mcp import create_server, resolve_embedder

pytestmark = pytest.mark.anyio

TOOLS = {
    "remember",
    "recall",
    "get_memory",
    "invalidate",
    "restore",
    "forget",
    "record_decision",
    "record_outcome",
    "lineage",
    "impact",
    "why",
    "log",
    # The reference memory server's nine (tests/test_mcp_reference.py compares them with it).
    *NINE,
    # The store's own graph tools.
    "graph_as_of",
    "entity_facts",
    "fact_sources",
    "assert_facts",
    "retract_facts",
    "declare_predicate",
    "distrust_source",
    "trust_source",
}
READ_ONLY = {
    "recall", "get_memory", "lineage", "impact", "why", "log",
    "read_graph", "search_nodes", "open_nodes", "graph_as_of", "entity_facts", "fact_sources",
}  # fmt: skip
DESTRUCTIVE = {"forget", "delete_entities", "delete_observations", "delete_relations"}


@pytest.fixture
async def client(store: Store) -> AsyncIterator[Client]:
    server = create_server(store, embedder=memory.HashingEmbedder(64))
    async with Client(server) as c:
        yield c


async def call(c: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
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


async def test_tools_are_listed_with_schemas_and_hints(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for name, tool in tools.items():
        hints = tool.annotations
        assert hints is not None and tool.description
        assert hints.read_only_hint is (name in READ_ONLY), name
        assert hints.destructive_hint is (name in DESTRUCTIVE), name
    assert tools["remember"].input_schema["required"] == ["content"]
    assert set(tools["record_decision"].input_schema["required"]) == {
        "task",
        "action",
        "confidence",
    }
    assert tools["recall"].input_schema["properties"]["mode"]["enum"] == [
        "auto",
        "vector",
        "hybrid",
        "fulltext",
    ]


async def test_walk_from_a_recall_hit_to_lineage_and_decisions(client: Client) -> None:
    said = await call(
        client,
        "remember",
        {"content": "the user prefers green tea", "scope": "u1", "said_by": "ana"},
    )
    summary = await call(
        client,
        "remember",
        {
            "content": "summary: ana likes tea",
            "scope": "u1",
            "kind": "summary",
            "derived_from": [said["id"]],
            "how": "summarise",
            "tags": ["drinks"],
            "metadata": {"turn": 3},
        },
    )
    again = await call(client, "remember", {"content": "the user prefers green tea", "scope": "u1"})
    assert again["id"] == said["id"]  # same content, same scope: one memory
    hits = (await call(client, "recall", {"query": "green tea", "k": 5}))["hits"]
    assert hits[0]["id"] == said["id"]
    found = await call(client, "recall", {"query": "tea", "tags": ["drinks"], "mode": "fulltext"})
    assert [h["id"] for h in found["hits"]] == [summary["id"]]
    filtered = await call(client, "recall", {"query": "tea", "metadata": {"turn": {"$gte": 3}}})
    assert [h["id"] for h in filtered["hits"]] == [summary["id"]]
    lineage = await call(client, "lineage", {"memory_id": summary["id"]})
    assert f"memory:{said['id']}" in {n["id"] for n in lineage["nodes"]}
    decision = await call(
        client,
        "record_decision",
        {"task": "drink", "action": "offer tea", "confidence": 0.9, "used": [summary["id"]]},
    )
    why = await call(client, "why", {"decision_id": decision["id"]})
    assert {f"memory:{said['id']}", f"memory:{summary['id']}"} <= {n["id"] for n in why["nodes"]}
    impact = await call(client, "impact", {"memory_id": said["id"]})
    assert set(impact["memories"]) == {said["id"], summary["id"]}
    assert impact["decisions"] == [decision["id"]]
    done = await call(
        client,
        "record_outcome",
        {"decision_id": decision["id"], "success": True, "outcome": {"accepted": True}},
    )
    assert done["success"] is True
    # Distrust the source memory: what derives from it is hidden too, and comes back.
    hidden = await call(client, "invalidate", {"memory_id": said["id"], "reason": "misheard"})
    assert set(hidden["hidden"]) == {said["id"], summary["id"]}
    assert (await call(client, "recall", {"query": "tea"}))["hits"] == []
    assert (
        len((await call(client, "recall", {"query": "tea", "include_invalidated": True}))["hits"])
        == 2
    )
    restored = await call(client, "restore", {"memory_id": said["id"]})
    assert set(restored["restored"]) == {said["id"], summary["id"]}
    one = await call(
        client, "invalidate", {"memory_id": summary["id"], "reason": "stale", "cascade": False}
    )
    assert one["hidden"] == [summary["id"]]
    got = await call(client, "get_memory", {"memory_id": summary["id"]})
    assert got["invalidated_reason"] == "stale" and "embedding" not in got
    receipt = await call(client, "forget", {"memory_id": said["id"]})
    assert receipt["memories"] == [said["id"]] and receipt["purged"] is True
    assert "no memory" in await refused(client, "get_memory", {"memory_id": said["id"]})
    keyed = await call(client, "remember", {"content": "likes jazz", "key": "music", "scope": "u1"})
    gone = await call(client, "forget", {"key": "music", "scope": "u1"})
    assert gone["memories"] == [keyed["id"]]
    # Resources: a memory and a decision by id.
    res = await client.read_resource(f"memory://{summary['id']}")
    assert json.loads(res.contents[0].text)["id"] == summary["id"]  # type: ignore[union-attr]
    res = await client.read_resource(f"decision://{decision['id']}")
    assert json.loads(res.contents[0].text)["action"] == "offer tea"  # type: ignore[union-attr]


async def _resource_error(c: Client, uri: str) -> tuple[int, str]:
    from mcp.shared.exceptions import MCPError

    with pytest.raises(MCPError) as caught:
        await c.read_resource(uri)
    return caught.value.error.code, caught.value.error.message


async def test_a_bad_resource_id_is_a_clean_error_and_no_existence_oracle(
    kv_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """memory://ID and decision://ID with an id that is malformed, unknown, or of another
    scope: an MCP "not found" error (-32602) with the store's words, no traceback in the log;
    for an agent, another scope's memory and one that never existed answer alike. Before, the
    MCP library logged each as an unexpected exception with its traceback (-32603)."""
    import logging

    from surreal_store import access, agents

    caplog.set_level(logging.DEBUG)
    unknown = "a" * 64
    async with Store(kv_url) as owner:
        await agents.register(owner, name="scout", kind="bot", agent_id="scout")
        await access.grant_agent(owner, agent_id="scout", secret="x" * 12, scopes=["mine"])
        theirs = await memory.remember(owner, scope="theirs", content="their green tea")
        async with Client(create_server(owner)) as c:
            code, said = await _resource_error(c, "memory://nope")
            assert code == -32602 and "invalid memory id 'nope'" in said
            assert await _resource_error(c, f"memory://{unknown}") == (
                -32602, f"NotFoundError: no memory {unknown}",
            )  # fmt: skip
            assert await _resource_error(c, "decision://nope") == (
                -32602, "NotFoundError: no decision nope",
            )  # fmt: skip
    async with (
        Store(kv_url, agent="scout", agent_secret="x" * 12) as scout,
        Client(create_server(scout)) as c,
    ):
        other = await _resource_error(c, f"memory://{theirs.id}")
        never = await _resource_error(c, f"memory://{unknown}")
        assert other[0] == never[0] == -32602 and "not visible" in other[1]
        assert other[1].replace(theirs.id, "ID") == never[1].replace(unknown, "ID")
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]


async def test_log_of_the_agent_state(client: Client, store: Store) -> None:
    from surreal_store import commits

    assert await call(client, "log", {}) == {"commits": []}  # nothing committed yet: an answer
    first = await commits.commit(store, state={"step": 1}, message="start", author="agent")
    history = await call(client, "log", {})
    assert [c["message"] for c in history["commits"]] == ["start"]
    assert "no branch" in await refused(client, "log", {"branch": "nope"})
    assert "not both" in await refused(client, "log", {"branch": "main", "commit": first.id})


@pytest.mark.parametrize(
    ("tool", "args", "words"),
    [
        ("remember", {}, "content"),
        ("remember", {"content": 3}, "content"),
        ("remember", {"content": "x", "tags": "one"}, "tags"),
        ("remember", {"content": "x", "derived_from": ["nope"]}, "invalid memory id"),
        ("remember", {"content": "x", "metadata": "x"}, "metadata"),
        ("remember", {"content": "x", "scope": ""}, "scope"),
        ("recall", {"query": "x", "k": 0}, "greater than or equal"),
        ("recall", {"query": "x", "k": 101}, "less than or equal"),
        ("recall", {"query": "x", "k": True}, "valid integer"),
        ("recall", {"query": "x", "k": 2.0}, "valid integer"),
        ("recall", {"query": "x", "k": "3"}, "valid integer"),
        ("log", {"limit": True}, "valid integer"),
        ("lineage", {"memory_id": "0" * 64, "max_depth": 1.5}, "valid integer"),
        ("recall", {"query": "x", "mode": "sideways"}, "mode"),
        ("recall", {"query": "x", "metadata": {"n": {"$regex": "."}}}, "operator"),
        ("recall", {"query": "x", "created_after": "yesterday"}, "created_after"),
        ("get_memory", {"memory_id": "nope"}, "invalid memory id"),
        ("get_memory", {"memory_id": "0" * 64}, "no memory"),
        ("invalidate", {"memory_id": "0" * 64}, "reason"),
        ("invalidate", {"memory_id": "0" * 64, "reason": "x"}, ""),
        ("forget", {}, "memory_id or key"),
        ("forget", {"memory_id": "0" * 64, "key": "k"}, "memory_id or key"),
        ("record_decision", {"task": "t", "action": "a", "confidence": 2}, "confidence"),
        ("record_decision", {"task": "t", "action": "a", "confidence": 0.5, "used": ["x"]}, ""),
        ("record_outcome", {"decision_id": "nope", "success": True}, ""),
        ("why", {"decision_id": "0" * 32}, ""),
        ("lineage", {"memory_id": "0" * 64, "max_depth": 0}, "max_depth"),
        ("no_such_tool", {}, "no_such_tool"),
    ],
)
async def test_bad_arguments_are_tool_errors(
    client: Client, store: Store, tool: str, args: dict[str, Any], words: str
) -> None:
    before = await store.query("SELECT count() AS n FROM memory GROUP ALL;", dict)
    text = await refused(client, tool, args)
    assert words.lower() in text.lower()
    # The server goes on, and nothing was written.
    assert (await call(client, "recall", {"query": "anything"}))["hits"] == []
    assert await store.query("SELECT count() AS n FROM memory GROUP ALL;", dict) == before


async def test_a_server_without_an_embedder_says_so(store: Store) -> None:
    server = create_server(store)
    async with Client(server) as c:
        assert "full text only" in (c.instructions or "")
        await call(c, "remember", {"content": "plain words only"})
        found = await call(c, "recall", {"query": "words"})
        assert found["mode"] == "fulltext" and "full text only" in found["note"]
        assert len(found["hits"]) == 1
        assert "needs an embedder" in await refused(c, "recall", {"query": "w", "mode": "vector"})


def test_embedder_choices() -> None:
    assert resolve_embedder("none", None) is None
    assert resolve_embedder("auto", None) is None
    hashing = resolve_embedder("hashing:32", None)
    assert hashing is not None and hashing.dimension == 32
    for bad in ["hashing:x", "word2vec", ""]:
        with pytest.raises(ValidationError):
            resolve_embedder(bad, None)
    with pytest.raises(ValidationError):
        create_server("mem://")  # type: ignore[arg-type]


async def test_over_stdio_as_a_subprocess(tmp_path: Path) -> None:
    import os

    url = f"surrealkv://{tmp_path / 'kv'}"
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "surreal_store", "mcp", "--url", url, "--embedder", "hashing:64"],
        cwd=str(tmp_path),
        env=dict(os.environ),  # the code under test (PYTHONPATH), not the client's bare env
    )
    async with Client(params) as c:
        assert {t.name for t in (await c.list_tools()).tools} == TOOLS
        m = await call(c, "remember", {"content": "the user prefers green tea"})
        hits = (await call(c, "recall", {"query": "green tea"}))["hits"]
        assert hits[0]["id"] == m["id"]
        assert "invalid memory id" in await refused(c, "get_memory", {"memory_id": "nope"})
    # The server closed the store on shutdown: this process can open the same files.
    async with Store(url) as store:
        assert (await memory.get(store, memory=m["id"])).content == "the user prefers green tea"


async def test_over_streamable_http_two_sessions_one_store(tmp_path: Path) -> None:
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"surrealkv://{tmp_path / 'kv'}"
    args = ["mcp", "--url", url, "--http", "--port", str(port), "--embedder", "hashing:64"]
    server = await anyio.open_process(
        [sys.executable, "-m", "surreal_store", *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ids = []
        for attempt in range(100):  # until the server listens
            try:
                async with Client(f"http://127.0.0.1:{port}/mcp") as c:
                    ids.append((await call(c, "remember", {"content": "over http"}))["id"])
                break
            except Exception:
                if attempt == 99 or server.returncode is not None:
                    raise
                await anyio.sleep(0.2)
        async with Client(f"http://127.0.0.1:{port}/mcp") as c:  # a second session
            hits = (await call(c, "recall", {"query": "http"}))["hits"]
            assert [h["id"] for h in hits] == ids
    finally:
        server.terminate()
        with anyio.fail_after(30):
            await server.wait()
    async with Store(url) as store:  # closed on shutdown
        assert (await memory.get(store, memory=ids[0])).content == "over http"


def test_the_command_refuses_a_bad_embedder(tmp_path: Path) -> None:
    import subprocess

    out = subprocess.run(
        [sys.executable, "-m", "surreal_store", "mcp", "--url", "mem://", "--embedder", "w2v"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 1 and "unknown embedder" in out.stderr


_json_text = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["", "\x00", "a" * 600, "'; DELETE memory; --", "memory:" + "0" * 64, "$x"]),
)
_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        _json_text,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(_json_text, inner, max_size=3)
    ),
    max_leaves=6,
)
_PROPERTIES = {
    "remember": ["content", "scope", "key", "kind", "tags", "metadata", "derived_from", "how",
                 "said_by"],
    "recall": ["query", "k", "mode", "scope", "kind", "tags", "metadata", "created_after",
               "created_before", "include_invalidated"],
    "get_memory": ["memory_id"],
    "invalidate": ["memory_id", "reason", "cascade", "by"],
    "restore": ["memory_id"],
    "forget": ["memory_id", "key", "scope", "reason"],
    "record_decision": ["task", "action", "confidence", "rationale", "alternatives", "used"],
    "record_outcome": ["decision_id", "success", "outcome"],
    "lineage": ["memory_id", "max_depth"],
    "impact": ["memory_id"],
    "why": ["decision_id"],
    "log": ["branch", "commit", "limit"],
}  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(
    calls=st.lists(
        st.sampled_from(sorted(_PROPERTIES)).flatmap(
            lambda tool: st.tuples(
                st.just(tool),
                st.dictionaries(st.sampled_from([*_PROPERTIES[tool], "extra"]), _json),
            )
        ),
        min_size=1,
        max_size=12,
    )
)
def test_hostile_arguments_never_crash_a_tool(calls: list[tuple[str, dict[str, Any]]]) -> None:
    """Any JSON for any tool: a result or a tool error with its reason; never a crash (the
    SDK's bare "Error executing tool NAME"), and the server answers on."""

    async def walk() -> None:
        async with (
            Store("mem://") as store,
            Client(create_server(store, embedder=memory.HashingEmbedder(16))) as c,
        ):
            kept = await call(c, "remember", {"content": "kept"})
            for tool, args in calls:
                result = await c.call_tool(tool, args)
                if result.is_error:
                    text = result.content[0].text  # type: ignore[union-attr]
                    assert text.strip() != f"Error executing tool {tool}", (tool, args)
            assert (await call(c, "get_memory", {"memory_id": kept["id"]}))["id"] == kept["id"]

    anyio.run(walk, backend="asyncio")


async def test_a_server_run_as_an_agent_serves_only_its_scopes(tmp_path: Path) -> None:
    # The operator grants the agent its scopes, then starts the server with the agent's
    # sign-in in the environment: every tool is then bound by the schema's permissions.
    import os

    from surreal_store import access, agents

    url = f"surrealkv://{tmp_path / 'kv'}"
    e = memory.HashingEmbedder(64)
    async with Store(url) as owner:
        await memory.declare_space(owner, model=e.model, dimension=e.dimension)
        await agents.register(owner, name="scout", kind="bot", agent_id="scout")
        await access.grant_agent(owner, agent_id="scout", secret="scout-secret", scopes=["mine"])
        theirs = await memory.remember(owner, scope="theirs", content="their green tea", embedder=e)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "surreal_store", "mcp", "--url", url, "--embedder", "hashing:64"],
        cwd=str(tmp_path),
        env={
            **os.environ,
            "SURREAL_STORE_AGENT": "scout",
            "SURREAL_STORE_AGENT_SECRET": "scout-secret",
        },
    )
    async with Client(params) as c:
        mine = await call(c, "remember", {"content": "my green tea", "scope": "mine"})
        assert mine["agent"] == "scout"
        hits = (await call(c, "recall", {"query": "green tea"}))["hits"]
        assert [h["id"] for h in hits] == [mine["id"]]
        assert "not visible" in await refused(c, "get_memory", {"memory_id": theirs.id})
        assert "may not create" in await refused(
            c, "remember", {"content": "planted", "scope": "theirs"}
        )
        assert "not visible" in await refused(
            c, "invalidate", {"memory_id": theirs.id, "reason": "x"}
        )
    async with Store(url) as owner:
        assert (await memory.get(owner, memory=theirs.id)).invalidated_at is None


async def test_an_agents_remember_without_a_scope_uses_its_one_scope(kv_url: str) -> None:
    # An agent with one granted scope remembers (and forgets by key) there when no scope is
    # given; with several, or none, the call is refused naming the scopes it may use. A
    # server run by a user keeps the "default" scope.
    from surreal_store import access, agents

    async with Store(kv_url) as owner:
        for agent_id, scopes in (("solo", ["notes"]), ("duo", ["red", "blue"]), ("none", [])):
            await agents.register(owner, name=agent_id, kind="bot", agent_id=agent_id)
            if scopes:
                await access.grant_agent(owner, agent_id=agent_id, secret="x" * 12, scopes=scopes)
        await access.grant_agent(owner, agent_id="none", secret="x" * 12, scopes=["gone"])
        await owner.execute("UPDATE agent:none SET scopes = []")
        async with Client(create_server(owner)) as c:
            assert (await call(c, "remember", {"content": "as the owner"}))["scope"] == "default"
        async with Store(kv_url, agent="solo", agent_secret="x" * 12) as solo:
            assert await access.granted_scopes(solo) == ["notes"]
            async with Client(create_server(solo)) as c:
                m = await call(c, "remember", {"content": "mine", "key": "k"})
                assert (m["scope"], m["agent"]) == ("notes", "solo")
                assert (await call(c, "forget", {"key": "k"}))["memories"] == [m["id"]]
        async with (
            Store(kv_url, agent="duo", agent_secret="x" * 12) as duo,
            Client(create_server(duo)) as c,
        ):
            said = await refused(c, "remember", {"content": "which one?"})
            assert "needs a scope" in said and "'red'" in said and "'blue'" in said
            assert (await call(c, "remember", {"content": "x", "scope": "blue"}))["scope"]
        async with (
            Store(kv_url, agent="none", agent_secret="x" * 12) as none,
            Client(create_server(none)) as c,
        ):
            assert "granted none" in await refused(c, "remember", {"content": "x"})
        with pytest.raises(ValidationError):
            await access.granted_scopes(owner)


def _serve(*args: str, cwd: Path) -> Any:
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "surreal_store", "mcp", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


async def test_the_command_checks_its_embedder_against_the_store_at_start(tmp_path: Path) -> None:
    """A server whose embedder does not match the store's space refuses to start, in one line
    that says what to start with; so does one whose model cannot load."""
    import importlib.util

    url = f"surrealkv://{tmp_path / 'kv'}"
    async with Store(url) as store:
        await memory.declare_space(store, model=memory.HashingEmbedder(256).model, dimension=256)
    mismatch = _serve("--url", url, "--embedder", "hashing:64", cwd=tmp_path)
    (line,) = mismatch.stderr.strip().splitlines()
    assert mismatch.returncode == 1 and "Traceback" not in mismatch.stderr
    assert "hashing-v1-64 (64-d), but the store's space is" in line and "--embedder auto" in line
    fine = _serve("--url", url, "--embedder", "hashing", cwd=tmp_path)  # 256: the store's own
    assert fine.returncode == 0, fine.stderr
    missing = _serve(
        "--url", url, "--embedder", "sentence-transformers:no-such-model", cwd=tmp_path
    )
    (line,) = missing.stderr.strip().splitlines()
    assert missing.returncode == 1 and line.startswith("error: --embedder sentence-transformers")
    if importlib.util.find_spec("sentence_transformers") is None:
        assert "needs the local extra: pip install 'surreal-store[local]'" in line


async def test_a_server_that_refuses_to_start_creates_no_store(tmp_path: Path) -> None:
    """An embedder refused at start (unknown, or a model that cannot load) is refused before
    the store is opened: a mistyped path stays absent."""
    for choice in ("bogus", "hashing:x", "sentence-transformers:no-such-model"):
        where = tmp_path / "typo" / "dir" / "x.db"
        refused = _serve("--url", f"surrealkv://{where}", "--embedder", choice, cwd=tmp_path)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
        assert not (tmp_path / "typo").exists(), choice


async def test_memories_written_without_an_embedder_are_embedded_once_one_is_there(
    tmp_path: Path,
) -> None:
    """A server started on a new store with the default embedder (none: the store has no
    space) keeps full text; started again with one, it embeds what was stored meanwhile."""
    url = f"surrealkv://{tmp_path / 'kv'}"
    import os

    plain = StdioServerParameters(
        command=sys.executable,
        args=["-m", "surreal_store", "mcp", "--url", url],
        cwd=str(tmp_path),
        env=dict(os.environ),  # the client passes a bare environment otherwise
    )
    async with Client(plain) as c:
        early = await call(c, "remember", {"content": "the user prefers green tea"})
        found = await call(c, "recall", {"query": "green tea"})
        assert found["mode"] == "fulltext" and "no embedder" in found["note"]
        assert await call(c, "log", {}) == {"commits": []}
        assert [h["id"] for h in found["hits"]] == [early["id"]]
    embedding = StdioServerParameters(
        command=sys.executable,
        args=["-m", "surreal_store", "mcp", "--url", url, "--embedder", "hashing:64"],
        cwd=str(tmp_path),
        env=dict(os.environ),
    )
    async with Client(embedding) as c:
        for _ in range(100):  # the server embeds them in the background, at start
            hits = (await call(c, "recall", {"query": "green tea", "mode": "vector"}))["hits"]
            if hits:
                break
            await anyio.sleep(0.1)
        assert [h["id"] for h in hits] == [early["id"]]
    async with Store(url) as store:
        got = await memory.get(store, memory=early["id"])
        assert got.embedding_model == memory.HashingEmbedder(64).model


@pytest.mark.parametrize("era", ["handshake", "2026-07-28"])
async def test_every_request_over_stdio_is_answered(tmp_path: Path, era: str) -> None:
    """A request holding a lone surrogate (JSON allows the escape, UTF-8 cannot carry it) is
    answered under its id: a write refuses it as the store's ValidationError, a read finds
    nothing; a line that is not JSON gets the parse error (-32700, id null), one that is not
    JSON-RPC the invalid request error (-32600, with its id). The server serves on after.
    Before, the MCP library's transport handed the server an exception without the id and
    none of these was answered: the client waited forever (found by the breaker)."""
    from _pipes import Pipes, ours, tool

    modern = era != "handshake"
    async with await ours(tmp_path) as process:
        pipes = Pipes(process)
        if not modern:
            await pipes.handshake()
        lone = "\ud800"
        entity = {"name": lone, "entityType": "t", "observations": []}
        await pipes.send(tool(1, "create_entities", {"entities": [entity]}, modern=modern))
        (created,) = await pipes.answers(1)
        assert created["id"] == 1 and created["result"]["isError"] is True
        said = created["result"]["content"][0]["text"]
        assert said.startswith("ValidationError: ") and "not valid text" in said
        await pipes.send(
            tool(2, "add_observations", {"observations": [
                {"entityName": lone, "contents": ["x"]}]}, modern=modern),
            tool(3, "search_nodes", {"query": lone}, modern=modern),
        )  # fmt: skip
        by_id = {a["id"]: a for a in await pipes.answers(2)}
        assert by_id[2]["result"]["content"][0]["text"] == f"Entity with name {lone} not found"
        assert by_id[3]["result"]["structuredContent"] == {"entities": [], "relations": []}
        await pipes.send("not json", '{"jsonrpc":"2.0","id":9,"method":3}', "[1, 2]")
        errors = await pipes.answers(3)
        assert [(e["id"], e["error"]["code"]) for e in errors] == [
            (None, -32700), (9, -32600), (None, -32600),
        ]  # fmt: skip
        ok = {"name": "ok", "entityType": "t", "observations": ["fine"]}
        await pipes.send(tool(4, "create_entities", {"entities": [ok]}, modern=modern))
        (done,) = await pipes.answers(1)
        assert done["result"]["structuredContent"] == {"entities": [ok]}
        await pipes.stdin.aclose()
        with anyio.fail_after(30):
            assert await process.wait() == 0


async def test_reads_the_transport_answers_are_the_librarys_answers(tmp_path: Path) -> None:
    """search_nodes, open_nodes and read_graph calls whose arguments are exactly the tools'
    are answered by the stdio transport itself (surreal_store/mcp/_fast.py); the same call
    with a `_meta` goes through the MCP library's dispatch: both answer the same. Before the
    handshake, the library's refusal stands; arguments that are not exactly the tool's get
    the library's words."""
    from _pipes import Pipes, line, ours, tool

    def via_library(request_id: int, name: str, arguments: dict[str, Any]) -> str:
        params = {"name": name, "arguments": arguments, "_meta": {}}
        return line({"id": request_id, "method": "tools/call", "params": params})

    async with await ours(tmp_path) as process:
        pipes = Pipes(process)
        await pipes.send(tool(1, "search_nodes", {"query": "x"}))
        (early,) = await pipes.answers(1)
        assert early["id"] == 1 and "error" in early, early  # not initialized: refused
        await pipes.handshake()
        entities = [
            {"name": "Zürich", "entityType": "city", "observations": ["on a lake 🌊", "Δ"]},
            {"name": "Ada", "entityType": "person", "observations": ["lives in Zürich"]},
            {"name": "lone", "entityType": "t", "observations": []},
        ]
        relations = [{"from": "Ada", "to": "Zürich", "relationType": "lives_in"}]
        await pipes.send(
            tool(2, "create_entities", {"entities": entities}),
            tool(3, "create_relations", {"relations": relations}),
        )
        await pipes.answers(2)
        reads: list[tuple[str, dict[str, Any]]] = [
            ("search_nodes", {"query": "zürich"}),
            ("search_nodes", {"query": "ZÜR"}),
            ("search_nodes", {"query": ""}),
            ("search_nodes", {"query": "\ud800"}),
            ("open_nodes", {"names": ["Ada", "nobody", "Ada"]}),
            ("open_nodes", {"names": []}),
            ("read_graph", {}),
        ]
        for i, (name, arguments) in enumerate(reads):
            await pipes.send(tool(10 + i, name, arguments), via_library(100 + i, name, arguments))
            fast, slow = sorted(await pipes.answers(2), key=lambda a: a["id"])
            assert "result" in fast and fast["result"]["isError"] is False, fast
            assert {**fast, "id": 0} == {**slow, "id": 0}, (name, arguments)
        assert fast["result"]["structuredContent"]["entities"][0]["name"] == "Zürich"
        await pipes.send(
            tool(20, "search_nodes", {"query": 5}),
            tool(21, "open_nodes", {"names": "Ada"}),
            tool(22, "search_nodes", {"query": "Ada"}, modern=True),
        )
        by_id = {a["id"]: a for a in await pipes.answers(3)}
        assert by_id[20]["result"]["isError"] is True
        assert by_id[20]["result"]["content"][0]["text"].startswith(
            "Error executing tool search_nodes: 1 validation error"
        )
        assert by_id[21]["result"]["isError"] is True
        assert "error" in by_id[22]  # a 2026-07-28 envelope on a handshake connection
        await pipes.stdin.aclose()
        with anyio.fail_after(30):
            assert await process.wait() == 0


def test_which_calls_the_transport_answers_itself() -> None:
    """The transport takes a tools/call of a registered tool once the library accepted an
    `initialize`, and only when the message is exactly a request with a name and arguments
    the tool takes; everything else is the library's."""
    from surreal_store.mcp._fast import Answer, FastCalls

    async def answer() -> Answer:
        return Answer("ok")

    def search(args: dict[str, Any]) -> Any:
        return answer() if args.keys() == {"query"} and isinstance(args["query"], str) else None

    fast = FastCalls({"search_nodes": search})

    def call(**params: Any) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}

    good = call(name="search_nodes", arguments={"query": "a"})
    assert fast.take(good) is None  # no initialize yet
    assert fast.take({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}) is None
    fast.answered(1, False)  # refused: still the library's
    assert fast.take(good) is None
    fast.take({"jsonrpc": "2.0", "id": "i", "method": "initialize", "params": {}})
    fast.answered(2, True)  # another request's answer
    assert fast.take(good) is None
    fast.answered("i", True)
    taken = fast.take(good)
    assert taken is not None and taken[:2] == (7, "search_nodes")
    got = taken[2]

    async def run() -> Answer:
        return await got

    assert anyio.run(run).text == "ok"
    for other in (
        call(name="search_nodes", arguments={"query": 1}),
        call(name="search_nodes", arguments={"query": "a", "k": 1}),
        call(name="search_nodes", arguments=None),
        call(name="search_nodes"),
        call(name="recall", arguments={"query": "a"}),
        call(name="search_nodes", arguments={"query": "a"}, _meta={}),
        {**good, "id": True},
        {**good, "id": None},
        {**good, "jsonrpc": "1.0"},
        {**good, "extra": 1},
        {**good, "method": "tools/list"},
        [good],
    ):
        assert fast.take(other) is None, other


async def test_a_second_server_on_one_embedded_store_says_what_to_do(tmp_path: Path) -> None:
    """Two assistants configured with `surreal-store mcp` on one surrealkv:// path: the second
    server refuses in one line naming the path and the remedies (one server over --http, or
    SurrealDB over ws://), exits 1, and answers its client's first request with that text,
    so the client shows it. Before, the line named neither remedy and the client saw the
    connection close."""
    import os

    from mcp.shared.exceptions import MCPError

    path = tmp_path / "kv"
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "surreal_store", "mcp", "--url", f"surrealkv://{path}", "--embedder", "none"],
        cwd=str(tmp_path),
        env=dict(os.environ),
    )
    async with Client(params) as first:
        await call(first, "create_entities", {"entities": []})
        second = _serve("--url", f"surrealkv://{path}", cwd=tmp_path)
        (line,) = second.stderr.strip().splitlines()
        assert second.returncode == 1 and "Traceback" not in second.stderr
        assert line.startswith(f"error: surreal-store mcp: surrealkv://{path} is open in another")
        for remedy in ("--http", "http://127.0.0.1:8000/mcp", "docker compose", "ws://"):
            assert remedy in line, remedy
        with pytest.raises((MCPError, BaseExceptionGroup)) as caught:  # a task group wraps it
            async with Client(params):
                pass
        found = caught.value
        while isinstance(found, BaseExceptionGroup):
            found = found.exceptions[0]
        assert isinstance(found, MCPError)
        assert found.error.message == line.removeprefix("error: ")
        await call(first, "read_graph", {})  # the first serves on


def test_what_each_line_of_stdin_gets() -> None:
    """The stdio transport's reading of one line (surreal_store/mcp/_stdio.py), as JSON-RPC
    2.0 has it: a message is handed on (a lone surrogate included), a line that is not JSON
    is a parse error with id null, JSON that is not a message an invalid request with its id
    when it has a usable one; a malformed response and a blank line get nothing."""
    from mcp.shared.message import SessionMessage

    from surreal_store.mcp._stdio import answer_for, encode

    def error(line: str) -> tuple[Any, int]:
        found = answer_for(line)
        assert isinstance(found, dict), found
        return found["id"], found["error"]["code"]

    request = answer_for('{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":"\\ud800"}}')
    assert isinstance(request, SessionMessage)
    assert encode(request) == b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":"\\ud800"}}\n'
    assert error("{") == (None, -32700)
    assert error('{"a":' + "[" * 5000 + "]" * 5000 + "}") == (None, -32700)
    assert error('{"jsonrpc":"2.0","id":"x","method":3}') == ("x", -32600)
    assert error('{"jsonrpc":"2.0","id":true,"method":"ping"}') == (None, -32600)  # no id
    assert error('{"id":4,"method":"ping"}') == (4, -32600)  # no "jsonrpc"
    assert error("[]") == (None, -32600) and error('"ping"') == (None, -32600)
    assert answer_for('{"jsonrpc":"2.0","id":{},"result":1}') is None  # a response: dropped
    assert answer_for("   ") is None
