"""The knowledge graph as an attacker tries it (#35): an agent of another scope, a VIEWER and
another tenant try every graph read and write, public and raw, on agent B's graph. Nothing of
B's is read or changed; a fact is seen only with both its ends and its sources; guessed ids of
B's entities answer as absent ones; look-alike names (case, NFKC, spaces) and look-alike scopes
never reach across scopes. The role matrix (tests/test_roles.py) covers every field."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import surrealdb

from surreal_store import (
    NotFoundError,
    PermissionDeniedError,
    RecordId,
    Store,
    StoreError,
    ThrownError,
    access,
    agents,
    graph,
    memory,
    provenance,
    runs,
)
from surreal_store.graph._models import fact_key

pytestmark = pytest.mark.anyio

SECRETS = {"a": "secret-of-agent-a", "b": "secret-of-agent-b"}
VIEWER = ("vic", "vic-password")
B_NAMES = [f"Secret Project {i}" for i in range(12)]
MARKERS = ["team-b", "Secret Project", "launch date", "b:run"]


@dataclasses.dataclass
class World:
    url: str
    b_fact: str
    b_memory: str
    a_fact: str  # A's fact, also sourced (by the owner) from B's run
    b_run: str


def _fact(subject: str, predicate: str, obj: str) -> graph.NewFact:
    return graph.NewFact(subject=subject, predicate=predicate, object=obj)


async def build(tmp_path: Path) -> World:
    url = f"surrealkv://{tmp_path / 'store'}"
    async with Store(url) as root:
        for name, scope in (("a", "team-a"), ("b", "team-b")):
            await agents.register(root, name=name, kind="bot", agent_id=name)
            await access.grant_agent(root, agent_id=name, secret=SECRETS[name], scopes=[scope])
        await access.add_user(root, name=VIEWER[0], password=VIEWER[1], role="viewer")
        run_b = await runs.create_run(root, spec_digest="b" * 64, agent_name="b", run_id="b:run")
        await runs.append_event(root, run_id=run_b.id, kind="step")
        trace_b = provenance.RunTrace(run_id=run_b.id, seq=1)
        await graph.create_entities(
            root, entities=[graph.NewEntity(name=n) for n in ["Ada", *B_NAMES]], scope="team-b"
        )
        await graph.declare_predicate(root, name="leads", single_valued=True, scope="team-b")
        m = await memory.remember(
            root, scope="team-b", content="the launch date is secret", agent="b"
        )
        (fb,) = await graph.assert_facts(
            root,
            facts=[graph.NewFact(subject="Ada", predicate="leads", object=B_NAMES[0], value=7)],
            scope="team-b",
            source=[trace_b, m.id],
        )
        await graph.add_observations(
            root, entity="Ada", contents=["knows the launch date"], scope="team-b", source=trace_b
        )
        # A's own graph, with the same and look-alike names; one fact the owner sourced from
        # B's run as well as A's own memory.
        await graph.create_entities(
            root,
            entities=[graph.NewEntity(name=n) for n in ("ada", "Ｓecret Project 1", "Plan")],
            scope="team-a",
        )
        mine = await memory.remember(root, scope="team-a", content="a's note", agent="a")
        (fa,) = await graph.assert_facts(
            root, facts=[_fact("ada", "owns", "Plan")], scope="team-a", source=[mine.id, trace_b]
        )
    return World(url, fb.id, m.id, fa.id, run_b.id)


B_GRAPH = """
SELECT * FROM entity WHERE scope = 'team-b' ORDER BY id;
SELECT * FROM fact WHERE scope = 'team-b' ORDER BY id;
SELECT * FROM fact_source WHERE in.scope = 'team-b' OR record::tb(out) = 'run_event' ORDER BY id;
SELECT * FROM observation WHERE scope = 'team-b' ORDER BY id;
SELECT * FROM predicate WHERE scope = 'team-b' ORDER BY id;
SELECT * FROM memory WHERE scope = 'team-b' ORDER BY id;
SELECT * FROM source_invalidation ORDER BY id;
"""


async def fingerprint(w: World) -> str:
    async with Store(w.url) as root:
        return repr(await root.execute(B_GRAPH))


Attempt = tuple[str, Callable[[Store], Awaitable[Any]]]


def attempts(w: World) -> list[Attempt]:
    b = "team-b"
    return [
        ("read_graph", lambda s: graph.read_graph(s, scope=b)),
        ("read_graph hidden", lambda s: graph.read_graph(s, scope=b, include_invalidated=True)),
        ("open_nodes", lambda s: graph.open_nodes(s, names=["Ada"], scope=b)),
        ("entity", lambda s: graph.entity(s, name="Ada", scope=b)),
        ("facts", lambda s: graph.facts(s, scope=b)),
        ("fact_history", lambda s: graph.fact_history(s, scope=b)),
        ("predicates", lambda s: graph.predicates(s, scope=b)),
        ("lineage fact", lambda s: provenance.lineage(s, fact=w.b_fact)),
        ("impact run", lambda s: provenance.impact(s, source=f"{w.b_run}:1")),
        ("create_entities", lambda s: graph.create_entities(
            s, entities=[graph.NewEntity(name="Planted")], scope=b)),
        ("create_entities same name", lambda s: graph.create_entities(
            s, entities=[graph.NewEntity(name="Ada")], scope=b)),
        ("assert_facts", lambda s: graph.assert_facts(
            s, facts=[_fact("Ada", "leads", B_NAMES[1])], scope=b)),
        ("retract_facts", lambda s: graph.retract_facts(
            s, facts=[graph.NewFact(subject="Ada", predicate="leads", object=B_NAMES[0], value=7)],
            scope=b)),
        ("retract_facts id", lambda s: graph.retract_facts(s, facts=[w.b_fact], scope=b)),
        ("retract_facts id in mine", lambda s: graph.retract_facts(
            s, facts=[w.b_fact], scope="team-a")),
        ("delete_entities", lambda s: graph.delete_entities(s, names=["Ada"], scope=b)),
        ("add_observations", lambda s: graph.add_observations(
            s, entity="Ada", contents=["planted"], scope=b)),
        ("delete_observations", lambda s: graph.delete_observations(
            s, entity="Ada", contents=["knows the launch date"], scope=b)),
        ("declare_predicate", lambda s: graph.declare_predicate(
            s, name="leads", single_valued=False, scope=b)),
        ("fact from b's memory", lambda s: graph.assert_facts(
            s, facts=[_fact("ada", "read", "Plan")], scope="team-a", source=w.b_memory)),
        ("fact from b's run", lambda s: graph.assert_facts(
            s, facts=[_fact("ada", "ran", "Plan")], scope="team-a", source=f"{w.b_run}:1")),
        ("decision used b's fact", lambda s: provenance.record_decision(
            s, task="t", action="a", confidence=0.5, used=[f"fact:{w.b_fact}"])),
        ("invalidate b's run", lambda s: provenance.invalidate(
            s, source=f"{w.b_run}:1", reason="x")),
    ]  # fmt: skip


def raw_attacks(w: World) -> list[str]:
    ada = f"entity:`{graph.entity_id('team-b', 'Ada')}`"
    mine = f"entity:`{graph.entity_id('team-a', 'ada')}`"
    fact = f"fact:`{w.b_fact}`"
    return [
        "SELECT * FROM entity",
        "SELECT * FROM entity WHERE name_key = 'ada'",
        "SELECT * FROM fact",
        "SELECT * FROM fact_source",
        "SELECT * FROM observation",
        "SELECT * FROM predicate",
        f"SELECT * FROM {ada}",
        f"RETURN {ada}->fact->entity.name",
        f"RETURN {ada}<-observation<-memory.content",
        f"RETURN {fact}.*",
        f"RETURN {fact}->fact_source->?",
        f"SELECT ->fact->entity.name AS n FROM {mine}",
        f"SELECT VALUE ->fact_source->? FROM fact:`{w.a_fact}`",
        f"UPDATE {ada} SET summary = 'pwned'",
        "UPDATE entity SET summary = 'pwned'",
        f"UPDATE {fact} SET retracted_at = time::now()",
        "UPDATE fact SET invalidated_at = time::now(), invalidated_causes = [memory:x]",
        f"DELETE {ada}",
        f"DELETE {fact}",
        "DELETE fact_source",
        "DELETE observation",
        f"CREATE {ada} SET scope = 'team-b', name = 'Ada', name_key = 'ada'",
        f"CREATE {ada} SET scope = 'team-a', name = 'Ada', name_key = 'ada'",
        f"RELATE {mine}->fact->{ada} CONTENT {{ id: fact:`{'c' * 32}`, scope: 'team-a', "
        "predicate: 'p', key: '" + "c" * 64 + "', valid_from: time::now(), "
        "recorded_at: time::now() }",
        f"RELATE {fact}->fact_source->memory:`{w.b_memory}`",
        f"RELATE memory:`{w.b_memory}`->observation->{mine} CONTENT {{ id: "
        f"['{w.b_memory}', '{graph.entity_id('team-a', 'ada')}', 0], scope: 'team-a', "
        "position: 0, recorded_at: time::now() }",
        "CREATE predicate:['team-b', 'x'] SET scope = 'team-b', name = 'x'",
        "UPDATE predicate SET single_valued = false",
    ]


def _raw(text: str) -> Callable[[Store], Awaitable[Any]]:
    return lambda s: s.execute(text)


def _leaks(value: Any) -> list[str]:
    text = repr(value)
    return [m for m in MARKERS if m in text]


async def _attack(s: Store, tries: list[Attempt]) -> dict[str, str]:
    out: dict[str, str] = {}
    for label, call in tries:
        try:
            result = await call(s)
        except StoreError as exc:
            said = getattr(exc, "message", str(exc))
            assert not [m for m in ("Secret Project", "launch date") if m in said], (label, said)
            out[label] = "refused" if isinstance(exc, PermissionDeniedError) else type(exc).__name__
            continue
        assert not _leaks(result), (label, result)
        out[label] = "answered"
    return out


async def test_an_agent_reaches_nothing_of_another_scopes_graph(tmp_path: Path) -> None:
    w = await build(tmp_path)
    before = await fingerprint(w)
    async with Store(w.url, agent="a", agent_secret=SECRETS["a"]) as a:
        public = await _attack(a, attempts(w))
        raw = await _attack(a, [(t, _raw(t)) for t in raw_attacks(w)])
        for label in ("create_entities", "create_entities same name", "declare_predicate"):
            assert public[label] == "refused", (label, public[label])
        for label in ("lineage fact", "decision used b's fact", "add_observations"):
            # Named and not visible: NotVisibleError (a refusal) or NotFoundError, as for an
            # absent record (test_guessed_entity_and_fact_ids_answer_as_absent_ones).
            assert public[label] in ("refused", "NotFoundError"), (label, public[label])
        assert public["fact from b's memory"] in ("NotFoundError", "refused")
        assert public["fact from b's run"] in ("NotFoundError", "refused")
        for text in raw_attacks(w)[:13]:
            assert raw[text] == "answered", text
        # A's own graph works, and shows nothing of B's run: the owner's edge from A's fact
        # to B's run event is not A's to see, in raw reads or in the lineage.
        view = await graph.entity(a, name="ada", scope="team-a")
        assert view is not None and [f.object for f in view.facts] == ["Plan"]
        lineage = await provenance.lineage(a, fact=w.a_fact)
        assert w.b_run not in repr(lineage.to_dict())
        await graph.create_entities(a, entities=[graph.NewEntity(name="Mine")], scope="team-a")
        await graph.declare_predicate(a, name="owns", single_valued=True, scope="team-a")
        note = await memory.remember(a, scope="team-a", content="a's own source")
        (f,) = await graph.assert_facts(
            a, facts=[_fact("Mine", "owns", "Plan")], scope="team-a", source=note.id
        )
        assert await graph.add_observations(
            a, entity="Mine", contents=["mine"], scope="team-a", source=note.id
        ) == ["mine"]
        receipt = await provenance.invalidate(a, memory=note.id, reason="wrong")
        assert receipt.facts == [f.id]
        assert f.id not in {x.id for x in await graph.facts(a, scope="team-a")}
        await provenance.restore(a, memory=note.id)
        assert f.id in {x.id for x in await graph.facts(a, scope="team-a")}
        d = await provenance.record_decision(a, task="t", action="a", confidence=0.5, used=[f])
        assert f"fact:{f.id}" in (await provenance.why(a, decision=d.id)).nodes
        assert await graph.retract_facts(a, facts=[f], scope="team-a")
        assert await graph.delete_entities(a, names=["Mine"], scope="team-a")
        await memory.forget(a, memory=note.id)
    assert await fingerprint(w) == before


async def test_a_viewer_reads_but_writes_nothing_and_another_tenant_sees_nothing(
    tmp_path: Path,
) -> None:
    w = await build(tmp_path)
    before = await fingerprint(w)
    async with Store(w.url, username=VIEWER[0], password=VIEWER[1]) as v:
        assert (await graph.entity(v, name="Ada", scope="team-b")) is not None
        for call in (
            graph.create_entities(v, entities=[graph.NewEntity(name="X")], scope="team-b"),
            graph.assert_facts(v, facts=[_fact("Ada", "p", B_NAMES[2])], scope="team-b"),
            graph.declare_predicate(v, name="p", single_valued=True, scope="team-b"),
            graph.delete_entities(v, names=["Ada"], scope="team-b"),
        ):
            with pytest.raises(PermissionDeniedError):
                await call
    db = surrealdb.AsyncSurreal(w.url)  # no client check on the way: the engine refuses
    await db.connect()
    try:
        await db.signin(
            {"namespace": "surreal_store", "database": "main",
             "username": VIEWER[0], "password": VIEWER[1]}
        )  # fmt: skip
        await db.use("surreal_store", "main")
        for text in (
            "UPDATE entity SET summary = 'x'",
            f"UPDATE fact:`{w.b_fact}` SET retracted_at = time::now()",
            "DELETE fact_source",
            "CREATE predicate:['team-b', 'y'] SET scope = 'team-b', name = 'y'",
        ):
            answer = (await db.query_raw(text, None))["result"][0]
            assert answer["status"] == "ERR" and "permission_denied" in answer["result"], text
    finally:
        await db.close()
    async with Store(w.url, tenant="elsewhere") as other:
        assert (await graph.read_graph(other, scope="team-b")).entities == []
        assert await other.query("SELECT * FROM entity", dict) == []
    assert await fingerprint(w) == before


@pytest.mark.parametrize(
    "scope", ["TEAM-A", "team-a ", " team-a", "ｔｅａｍ-a", "team-", "team-a\x00", "team_a"]
)
async def test_look_alike_scopes_are_other_scopes(tmp_path: Path, scope: str) -> None:
    w = await build(tmp_path)
    async with Store(w.url, agent="a", agent_secret=SECRETS["a"]) as a:
        assert (await graph.read_graph(a, scope=scope)).entities == []
        with pytest.raises((PermissionDeniedError, NotFoundError)):
            await graph.create_entities(a, entities=[graph.NewEntity(name="ada")], scope=scope)


async def test_look_alike_names_never_resolve_or_merge_across_scopes(tmp_path: Path) -> None:
    w = await build(tmp_path)
    async with Store(w.url) as root:
        # The same name in two scopes: two entities, two ids; look-alikes share a name key
        # within a scope, never across.
        team_a = {e.name: e for e in (await graph.read_graph(root, scope="team-a")).entities}
        team_b = {e.name: e for e in (await graph.read_graph(root, scope="team-b")).entities}
        assert graph.name_key("Ａｄａ") == graph.name_key(" ADA ") == graph.name_key("ada")
        assert team_a["ada"].id != team_b["Ada"].id
        for look_alike in ("Ada", "ADA", "Ａｄａ", " ada", "ada\u00a0"):
            with pytest.raises(NotFoundError):
                await graph.assert_facts(
                    root, facts=[_fact(look_alike, "p", "Plan")], scope="team-a"
                )
            assert await graph.entity(root, name=look_alike, scope="team-b") is None or (
                look_alike == "Ada"
            )
        made = await graph.create_entities(
            root, entities=[graph.NewEntity(name="Ada")], scope="team-a"
        )
        assert [e.scope for e in made] == ["team-a"] and made[0].id != team_b["Ada"].id
    async with Store(w.url, agent="a", agent_secret=SECRETS["a"]) as a:
        keys = await a.query("SELECT VALUE scope FROM entity WHERE name_key = 'ada'", str)
        assert keys == ["team-a", "team-a"]
        key = graph.name_key("Secret Project 1")
        found = await a.query("SELECT VALUE name FROM entity WHERE name_key = $k", str, k=key)
        assert found == ["Ｓecret Project 1"]


async def test_guessed_entity_and_fact_ids_answer_as_absent_ones(tmp_path: Path) -> None:
    """For each of B's entity names (right guesses) and as many names B never used (wrong
    ones), every call A makes answers alike, the guess aside."""
    w = await build(tmp_path)
    right = B_NAMES
    wrong = [f"Secret Project {i}" for i in range(100, 112)]
    mine = RecordId("entity", graph.entity_id("team-a", "ada"))
    calls: dict[str, Callable[[Store, str], Awaitable[Any]]] = {
        "entity": lambda s, n: graph.entity(s, name=n, scope="team-b"),
        "open_nodes": lambda s, n: graph.open_nodes(s, names=[n], scope="team-b"),
        "facts": lambda s, n: graph.facts(s, entity=n, scope="team-b"),
        "add_observations": lambda s, n: graph.add_observations(
            s, entity=n, contents=["x"], scope="team-b"
        ),
        "assert_facts": lambda s, n: graph.assert_facts(
            s, facts=[_fact(n, "p", n)], scope="team-b"
        ),
        "create_entities": lambda s, n: graph.create_entities(
            s, entities=[graph.NewEntity(name=n)], scope="team-b"
        ),
        "SELECT": lambda s, n: s.execute("SELECT * FROM $id", id=_b(n)),
        "exists": lambda s, n: s.execute("RETURN record::exists($id)", id=_b(n)),
        "UPDATE": lambda s, n: s.execute("UPDATE $id SET summary = 'x'", id=_b(n)),
        "DELETE": lambda s, n: s.execute("DELETE $id RETURN BEFORE", id=_b(n)),
        "CREATE mine": lambda s, n: s.execute(
            "CREATE $id SET scope = 'team-a', name = $n, name_key = 'x'", id=_b(n), n=n
        ),
        "UPSERT": lambda s, n: s.execute("UPSERT $id SET summary = 'x'", id=_b(n)),
        "RELATE": lambda s, n: s.execute(
            "RELATE $mine->fact->$id CONTENT { id: fact:`" + "d" * 32 + "`, scope: 'team-a', "
            "predicate: 'p', key: $k, valid_from: time::now(), recorded_at: time::now() }",
            id=_b(n), mine=mine, k="d" * 64,
        ),
    }  # fmt: skip
    before = await fingerprint(w)
    differ = []
    async with Store(w.url, agent="a", agent_secret=SECRETS["a"]) as a:
        for label, call in calls.items():
            answers = {}
            for n in right + wrong:
                q = a.stats.queries
                try:
                    said = f"returned {await call(a, n)!r}"
                except StoreError as exc:
                    said = f"{type(exc).__name__}: {exc}"
                for secret in (n, graph.entity_id("team-b", n)):
                    said = said.replace(secret, "<guess>")
                answers[n] = (said, a.stats.queries - q)
            if len(set(answers.values())) != 1:
                differ.append(f"{label}: {set(answers.values())}")
    assert not differ, "\n".join(differ)
    assert await fingerprint(w) == before


def _b(name: str) -> RecordId:
    return RecordId("entity", graph.entity_id("team-b", name))


async def test_an_agent_cannot_show_again_a_fact_another_source_hides(tmp_path: Path) -> None:
    """A's fact is also sourced from B's run; the owner distrusts that run. A, who cannot see
    the run nor lift its distrust, clears the fact's causes by hand: the database refuses, and
    the fact stays hidden."""
    w = await build(tmp_path)
    async with Store(w.url) as root:
        await provenance.invalidate(
            root, source=provenance.RunTrace(run_id=w.b_run, seq=1), reason="distrusted"
        )
        assert await graph.facts(root, scope="team-a") == []
    async with Store(w.url, agent="a", agent_secret=SECRETS["a"]) as a:
        with pytest.raises(StoreError, match="hidden exactly by the causes"):
            await a.execute(
                "UPDATE $f SET invalidated_at = NONE, invalidated_reason = NONE, "
                "invalidated_by = NONE, invalidated_causes = [];",
                f=RecordId("fact", w.a_fact),
            )
        assert await graph.facts(a, scope="team-a") == []
    async with Store(w.url) as root:
        assert await graph.facts(root, scope="team-a") == []
        shown = await graph.facts(root, scope="team-a", include_invalidated=True)
        assert [f.id for f in shown] == [w.a_fact] and shown[0].invalidated


async def test_an_agent_imports_a_reference_file_into_its_own_scope(tmp_path: Path) -> None:
    """The import's run is the agent's own (named after it), so an agent can bring a reference
    memory file into its scope; into another scope it is refused and writes nothing."""
    from surreal_store._cli._graph_io import import_records, read_memory_file

    w = await build(tmp_path)
    path = tmp_path / "memory.jsonl"
    path.write_text(
        '{"type":"entity","name":"Plan B","entityType":"plan","observations":["drafted"]}\n'
        '{"type":"relation","from":"Plan B","to":"Plan","relationType":"follows"}\n'
    )
    records, _ = read_memory_file(path)
    async with Store(w.url, agent="a", agent_secret=SECRETS["a"]) as a:
        report = await import_records(a, records, source=str(path), scope="team-a")
        assert report.run_id.startswith("a:import-graph.")
        view = await graph.entity(a, name="Plan B", scope="team-a")
        assert view is not None and view.contents == ["drafted"]
        assert [f.object for f in view.facts] == ["Plan"]
    before = await fingerprint(w)
    async with Store(w.url, agent="a", agent_secret=SECRETS["a"]) as a:
        with pytest.raises(StoreError):
            await import_records(a, records, source=str(path), scope="team-b")
    assert await fingerprint(w) == before


async def test_an_agent_repeats_and_widens_facts_and_cannot_forge_transaction_time(
    tmp_path: Path,
) -> None:
    """An agent's repeat or widening of a fact keeps its assertion as a part (schema 036),
    which it may create (32 hex, as its facts are); calling the schema's functions directly it
    cannot record a fact in the past (the breaker forged recorded_at 2001 with fn::fact_copy)."""
    w = await build(tmp_path)
    async with Store(w.url, agent="a", agent_secret=SECRETS["a"]) as a:
        note = await memory.remember(a, scope="team-a", content="a second note")
        start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        fact = graph.NewFact(subject="ada", predicate="owns", object="Plan", valid_from=start)
        assert await graph.assert_facts(a, facts=[fact], scope="team-a", source=note.id) != []
        assert await graph.assert_facts(a, facts=[fact], scope="team-a") == []  # a repeat
        wider = graph.NewFact(
            subject="ada", predicate="owns", object="Plan",
            valid_from=dt.datetime(2019, 1, 1, tzinfo=dt.UTC), valid_until=start,
        )  # fmt: skip
        (joined,) = await graph.assert_facts(a, facts=[wider], scope="team-a", source=note.id)
        assert joined.valid_from.year == 2019
        with pytest.raises(ThrownError, match=r"past, not the future|now"):
            await a.execute(
                "RETURN fn::fact_copy(type::record('fact', $f), d'1990-01-01T00:00:00Z', NONE,"
                " d'2001-01-01T00:00:00Z', false);",
                f=joined.id,
            )


async def test_a_piece_of_another_agents_fact_keeps_citing_its_run(tmp_path: Path) -> None:
    """Agents a and b share a scope; b's fact cites b's own run; a's single-valued rival
    supersedes part of it. The pieces left are recorded in a's session, which may not read
    b's run's edges: before, they cited nothing, and distrusting b's run left them showing."""
    url = f"surrealkv://{tmp_path / 'store'}"
    secrets = {n: f"secret-of-{n}-shared" for n in ("a", "b")}
    async with Store(url) as root:
        for name in ("a", "b"):
            await agents.register(root, name=name, kind="bot", agent_id=name)
            await access.grant_agent(root, agent_id=name, secret=secrets[name], scopes=["team"])
        names = ("Ada", "Acme", "Globex")
        await graph.create_entities(
            root, entities=[graph.NewEntity(name=n) for n in names], scope="team"
        )
        await graph.declare_predicate(root, name="works_at", single_valued=True, scope="team")

    def job(obj: str, start: int, end: int | None = None) -> graph.NewFact:
        return graph.NewFact(
            subject="Ada", predicate="works_at", object=obj,
            valid_from=dt.datetime(start, 1, 1, tzinfo=dt.UTC),
            valid_until=None if end is None else dt.datetime(end, 1, 1, tzinfo=dt.UTC),
        )  # fmt: skip

    async with Store(url, agent="b", agent_secret=secrets["b"]) as b:
        await runs.create_run(b, spec_digest="b" * 64, agent_name="b", run_id="b:run")
        event = await runs.append_event(b, run_id="b:run", kind="step")
        trace = provenance.RunTrace(run_id="b:run", seq=event.seq)
        await graph.assert_facts(b, facts=[job("Acme", 2000)], scope="team", source=trace)
    async with Store(url, agent="a", agent_secret=secrets["a"]) as a:
        await graph.assert_facts(a, facts=[job("Globex", 2005, 2007)], scope="team")
    async with Store(url) as root:
        await provenance.invalidate(root, source=trace, reason="b's run lied")
        left = [
            (f.object, f.valid_from.year)
            for f in await graph.fact_history(root, entity="Ada", scope="team")
            if f.retracted_at is None and f.invalidated_at is None
        ]
        assert left == [("Globex", 2005)]


_RAW_FACT = """INSERT RELATION INTO fact {
    id: type::record('fact', $id), in: type::record('entity', $s), out: type::record('entity', $o),
    scope: $scope, predicate: 'works_at', key: $key, valid_from: d'1900-01-01T00:00:00Z',
    recorded_at: time::now(), invalidated_causes: [], supersedes: $sup
} RETURN NONE;"""


async def test_an_agent_cannot_forge_a_facts_key_supersedes_or_retraction_time(
    tmp_path: Path,
) -> None:
    """The breaker's findings (2026-12-07, schema 040): an agent wrote a fact whose `key` was
    another fact's (of another scope: the owner's later assertion of that key was swallowed,
    its distrust of a run failed; of its own scope: another agent's assertion joined a
    different fact), a fact that `supersedes` another agent's fact of another key (so it cited
    that agent's run), and retractions dated at their recorded_at (erasing from the past what
    the store believed); and a source-less repeat of another agent's fact was dropped,
    because the agent's session cannot see that fact's sources."""
    url = f"surrealkv://{tmp_path / 'store'}"
    secrets = {n: f"secret-of-{n}-keyed" for n in ("a", "b", "c")}
    async with Store(url) as root:
        for name, scope in (("a", "team"), ("b", "team"), ("c", "other")):
            await agents.register(root, name=name, kind="bot", agent_id=name)
            await access.grant_agent(root, agent_id=name, secret=secrets[name], scopes=[scope])
        await graph.create_entities(
            root, entities=[graph.NewEntity(name=n) for n in ("Ada", "Acme", "Globex")],
            scope="team",
        )  # fmt: skip
        await graph.create_entities(
            root, entities=[graph.NewEntity(name=n) for n in ("X", "Y")], scope="other"
        )
        await graph.declare_predicate(root, name="works_at", single_valued=True, scope="team")
        old = uuid.uuid4().hex
        await root.execute(
            _RAW_FACT.replace("recorded_at: time::now()", "recorded_at: d'2020-01-01T00:00:00Z'")
            .replace("'works_at'", "'knows'"),
            id=old, scope="team", sup=None, s=graph.entity_id("team", "Ada"),
            o=graph.entity_id("team", "Globex"),
            key=fact_key("team", "Ada", "knows", "Globex", None),
        )  # fmt: skip

    def job(obj: str, start: int) -> graph.NewFact:
        return graph.NewFact(
            subject="Ada", predicate="works_at", object=obj,
            valid_from=dt.datetime(start, 1, 1, tzinfo=dt.UTC),
        )  # fmt: skip

    acme = fact_key("team", "Ada", "works_at", "Acme", None)

    async def plant(s: Store, scope: str, ends: tuple[str, str], key: str, sup: Any = None) -> None:
        await s.execute(
            _RAW_FACT, id=uuid.uuid4().hex, scope=scope, key=key, sup=sup,
            s=graph.entity_id(scope, ends[0]), o=graph.entity_id(scope, ends[1]),
        )  # fmt: skip

    async with Store(url, agent="b", agent_secret=secrets["b"]) as b:
        await runs.create_run(b, spec_digest="b" * 64, agent_name="b", run_id="b:run")
        event = await runs.append_event(b, run_id="b:run", kind="step")
        trace = provenance.RunTrace(run_id="b:run", seq=event.seq)
        (fb,) = await graph.assert_facts(b, facts=[job("Acme", 2000)], scope="team", source=trace)
        await graph.add_observations(b, entity="Ada", contents=["seen at Acme"], scope="team")
    async with Store(url, agent="c", agent_secret=secrets["c"]) as c:
        with pytest.raises(ThrownError, match="key of a fact"):
            await plant(c, "other", ("X", "Y"), acme)  # another scope's key
        with pytest.raises(ThrownError, match="supersedes"):
            await plant(
                c, "other", ("X", "Y"), fact_key("other", "X", "works_at", "Y", None),
                sup=RecordId("fact", fb.id),
            )  # fmt: skip
    async with Store(url, agent="a", agent_secret=secrets["a"]) as a:
        with pytest.raises(ThrownError, match="key of a fact"):
            await plant(a, "team", ("Ada", "Globex"), acme)  # its own scope, another fact's key
        # Anything an agent retracts is retracted now: not at its recorded_at (a fact the
        # owner brought in with its history, recorded in 2020), nor a minute or more back.
        with pytest.raises(ThrownError, match="an agent retracts a fact now"):
            await a.execute(
                "UPDATE type::record('fact', $f) SET retracted_at = d'2021-01-01T00:00:00Z';",
                f=old,
            )
        for table, key in (("fact", fb.id), ("entity", graph.entity_id("team", "Acme"))):
            with pytest.raises(ThrownError, match=r"now|after it is recorded"):
                await a.execute(
                    f"UPDATE type::record('{table}', $k) SET retracted_at = time::now() - 2m;",
                    k=key,
                )
        with pytest.raises(ThrownError, match=r"now|after it is recorded"):
            await a.execute(
                "UPDATE observation SET retracted_at = time::now() - 2m WHERE scope = 'team';"
            )
        # A forged normalised name (to capture resolution by similarity) is refused.
        with pytest.raises(ThrownError, match="name_key"):
            await a.execute(
                "CREATE type::record('entity', $id) SET scope = 'team', name = 'Mallory', "
                "name_key = 'bob';",
                id=graph.entity_id("team", "Mallory"),
            )
        # A repeat of b's fact, with no source: a's session cannot see b's run's edge.
        assert await graph.assert_facts(a, facts=[job("Acme", 2000)], scope="team") == []
    async with Store(url) as root:
        view = await graph.entity(root, name="Ada", scope="team")
        assert view is not None and view.contents == ["seen at Acme"]
        assert [
            f.id for f in await graph.facts(root, entity="Ada", predicate="works_at", scope="team")
        ] == [fb.id]
        await provenance.invalidate(root, source=trace, reason="b's run lied")
        # What a said stands, as the owner's own repeat would.
        left = [
            (f.object, f.valid_from.year)
            for f in await graph.fact_history(root, entity="Ada", scope="team")
            if f.retracted_at is None and f.invalidated_at is None and f.predicate == "works_at"
        ]
        assert left == [("Acme", 2000)]
