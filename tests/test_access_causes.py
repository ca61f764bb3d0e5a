"""A memory's causes as an attacker tries them (#35, schema 041): an agent cannot lift, forge
or read a distrust through a memory's ``invalidated_causes``.

Agents a and b share scope "team"; c has scope "other". The owner (no credentials) distrusts
b's run, or a memory of another scope. Each attack is a raw statement of an agent's session;
the legitimate paths (an agent's own invalidate and restore, remember with provenance, forget)
still work beside it."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from surreal_store import (
    PermissionDeniedError,
    RecordId,
    Store,
    access,
    agents,
    graph,
    memory,
    provenance,
    runs,
)
from surreal_store.provenance import MemoryDerivation, RunTrace

pytestmark = pytest.mark.anyio

SCOPES = {"a": "team", "b": "team", "c": "other"}


def _secret(name: str) -> str:
    return f"secret-of-{name}-causes"


@pytest.fixture
async def url(tmp_path: Path) -> str:
    url = f"surrealkv://{tmp_path / 'store'}"
    async with Store(url) as root:
        for name, scope in SCOPES.items():
            await agents.register(root, name=name, kind="bot", agent_id=name)
            await access.grant_agent(root, agent_id=name, secret=_secret(name), scopes=[scope])
        for scope in ("team", "other"):
            await graph.create_entities(
                root, entities=[graph.NewEntity(name=n) for n in ("X", "Y")], scope=scope
            )
    return url


def _agent(url: str, name: str) -> Store:
    return Store(url, agent=name, agent_secret=_secret(name))


def _fact(predicate: str) -> graph.NewFact:
    return graph.NewFact(subject="X", predicate=predicate, object="Y")


async def _trace(s: Store, name: str) -> RunTrace:
    run_id = f"{name}:{uuid.uuid4().hex[:8]}"
    await runs.create_run(s, spec_digest="b" * 64, agent_name=name, run_id=run_id)
    event = await runs.append_event(s, run_id=run_id, kind="step")
    return RunTrace(run_id=run_id, seq=event.seq)


async def _state(url: str, m: str, f: str) -> tuple[object, object]:
    """Whether memory m and fact f are hidden, as the owner sees them."""
    async with Store(url) as root:
        (mh,) = await root.execute(
            "SELECT VALUE invalidated_causes FROM ONLY type::record('memory', $m);", m=m
        )
        (fh,) = await root.execute(
            "SELECT VALUE invalidated_causes FROM ONLY type::record('fact', $f);", f=f
        )
        return mh, fh


async def _quarantined(url: str) -> tuple[RunTrace, str, str, str]:
    """b's memory (and one derived from it) sourced from b's run, a fact citing the memory;
    then the owner distrusts the run."""
    async with _agent(url, "b") as b:
        tb = await _trace(b, "b")
        m = await memory.remember(b, scope="team", content="Ada joined Acme", provenance=[tb])
        d = await memory.remember(
            b, scope="team", content="summary: Ada at Acme",
            provenance=[MemoryDerivation(parent=m.id, how="sum")],
        )  # fmt: skip
        (f,) = await graph.assert_facts(b, facts=[_fact("works_at")], scope="team", source=m.id)
    async with Store(url) as root:
        await provenance.invalidate(root, source=tb, reason="operator quarantine")
    return tb, m.id, d.id, f.id


LIFTS = [
    "UPDATE memory SET invalidated_at = NONE, invalidated_reason = NONE, invalidated_by = NONE,"
    " invalidated_causes = [] WHERE invalidated_at != NONE RETURN NONE;",
    # Another cause in place of the operator's (one the agent may lift later).
    "UPDATE type::record('memory', $m) SET invalidated_causes = [id] RETURN NONE;",
    "UPDATE type::record('memory', $m) SET invalidated_causes -= $cause RETURN NONE;",
]


@pytest.mark.parametrize("agent", ["a", "b"])
@pytest.mark.parametrize("statement", LIFTS)
async def test_an_agent_cannot_lift_an_operators_quarantine_by_an_update(
    url: str, agent: str, statement: str
) -> None:
    """Finding 1: emptying (or rewriting) the causes showed the memories and the facts citing
    them again, the distrust still standing; agent a could do it to b's memories too."""
    tb, m, d, f = await _quarantined(url)
    before = await _state(url, m, f)
    assert before[0] and before[1]
    async with _agent(url, agent) as s:
        with pytest.raises(PermissionDeniedError):
            await s.execute(statement, m=m, cause=RecordId("run_event", [tb.run_id, tb.seq]))
        with pytest.raises(PermissionDeniedError):
            await s.execute(
                "UPDATE type::record('memory', $d) SET invalidated_causes = [] , "
                "invalidated_at = NONE RETURN NONE;", d=d,
            )  # fmt: skip
    assert await _state(url, m, f) == before
    async with Store(url) as root:
        assert await graph.facts(root, scope="team") == []


async def test_an_agent_cannot_rewrite_why_a_memory_was_hidden(url: str) -> None:
    _, m, _, _ = await _quarantined(url)
    async with _agent(url, "b") as b:
        with pytest.raises(PermissionDeniedError):
            await b.execute(
                "UPDATE type::record('memory', $m) SET invalidated_reason = 'all fine',"
                " invalidated_by = 'operator' RETURN NONE;", m=m,
            )  # fmt: skip
    async with Store(url) as root:
        (reason,) = await root.execute(
            "SELECT VALUE invalidated_reason FROM ONLY type::record('memory', $m);", m=m
        )
        assert reason == "operator quarantine"


async def test_an_agent_cannot_narrow_an_operators_distrust(url: str) -> None:
    """cascade = false would make the run's distrust reach only itself: every memory and fact
    below would lose it."""
    _, m, _, f = await _quarantined(url)
    before = await _state(url, m, f)
    async with _agent(url, "b") as b:
        with pytest.raises(PermissionDeniedError):
            await b.execute(
                "UPDATE source_invalidation SET cascade = false RETURN NONE;",
            )
    assert await _state(url, m, f) == before


async def test_an_agent_still_lifts_what_it_distrusted_and_sources_anew(url: str) -> None:
    """The legitimate paths in an agent's session: its own distrust of its run and of a
    memory, restored; remember with a distrusted source; forget's recompute."""
    async with _agent(url, "b") as b:
        tb = await _trace(b, "b")
        m = await memory.remember(b, scope="team", content="own note", provenance=[tb])
        (f,) = await graph.assert_facts(b, facts=[_fact("owns")], scope="team", source=m.id)
        await provenance.invalidate(b, source=tb, reason="my run was wrong")
        late = await memory.remember(b, scope="team", content="late note", provenance=[tb])
        assert (await memory.get(b, memory=late.id)).invalidated_at is not None
        child = await memory.remember(
            b, scope="team", content="child note",
            provenance=[MemoryDerivation(parent=m.id, how="sum")],
        )  # fmt: skip
        await memory.invalidate(b, memory=child.id, reason="mine")
        await memory.restore(b, memory=child.id)
        await provenance.restore(b, source=tb)
        for mid in (m.id, late.id, child.id):
            assert (await memory.get(b, memory=mid)).invalidated_at is None
        assert [x.id for x in await graph.facts(b, scope="team")] == [f.id]
        # Forgetting a hidden parent shows what derived from it (its causes recomputed).
        await provenance.invalidate(b, memory=m.id, reason="parent wrong")
        assert (await memory.get(b, memory=child.id)).invalidated_at is not None
        await memory.forget(b, memory=m.id)
        assert (await memory.get(b, memory=child.id)).invalidated_at is None


async def test_an_agent_cannot_read_another_scopes_distrust_through_a_cause(url: str) -> None:
    """Finding 3: c names a guessed memory id of scope "billing" as a cause of its own memory;
    the facts citing c's memory read its distrust and its reason. Both guesses now answer
    alike: refused, nothing read."""
    async with Store(url) as root:
        secret = await memory.remember(root, scope="billing", content="card ends 4242")
        await provenance.invalidate(
            root, memory=secret.id, reason="PCI incident 17: card 4242 exposed"
        )
    answers = []
    async with _agent(url, "c") as c:
        for guess in ("card ends 4242", "card ends 1111"):
            mc = await memory.remember(c, scope="other", content="probe " + guess)
            (f,) = await graph.assert_facts(
                c, facts=[_fact("p" + uuid.uuid4().hex[:6])], scope="other", source=mc.id
            )
            g = hashlib.sha256(f"{len('billing')}:billing{guess}".encode()).hexdigest()
            with pytest.raises(PermissionDeniedError) as refused:
                await c.execute(
                    "UPDATE type::record('memory', $m) SET invalidated_at = time::now(),"
                    " invalidated_causes = [type::record('memory', $g)] RETURN NONE;",
                    m=str(mc.id), g=g,
                )  # fmt: skip
            (reason,) = await c.execute(
                "SELECT VALUE invalidated_reason FROM ONLY type::record('fact', $f);", f=str(f.id)
            )
            answers.append((str(refused.value).replace(g, "?"), reason))
    assert answers[0] == answers[1]
    assert answers[0][1] is None


async def test_an_agent_cannot_create_a_memory_with_a_foreign_cause(url: str) -> None:
    """The same probe at creation: a memory's causes set when it is created. The same create
    without the cause is accepted."""
    async with Store(url) as root:
        secret = await memory.remember(root, scope="billing", content="card ends 4242")
        await provenance.invalidate(root, memory=secret.id, reason="PCI incident 17")
    content = "probe at create"
    mid = hashlib.sha256(f"{len('other')}:other{content}".encode()).hexdigest()
    create = (
        "CREATE type::record('memory', $id) SET scope = 'other', content = $content,"
        " content_hash = crypto::sha256($content), kind = 'note', invalidated_at = {at},"
        " invalidated_causes = {causes} RETURN NONE;"
    )
    async with _agent(url, "c") as c:
        with pytest.raises(PermissionDeniedError):
            await c.execute(
                create.format(at="time::now()", causes="[type::record('memory', $g)]"),
                id=mid, content=content, g=str(secret.id),
            )  # fmt: skip
        assert await c.execute("SELECT VALUE id FROM memory;") == [[]]
        await c.execute(create.format(at="NONE", causes="[]"), id=mid, content=content)
        assert await c.execute("SELECT VALUE id FROM memory;") == [[RecordId("memory", mid)]]


async def test_an_agent_forgets_only_its_own_memories(url: str) -> None:
    """Finding 9: memory delete was open to any agent of the scope; docs/graph.md says a
    forget is for "its agent in its scopes"."""
    async with _agent(url, "b") as b:
        m = await memory.remember(b, scope="team", content="b's own note")
    async with _agent(url, "a") as a:
        with pytest.raises(PermissionDeniedError):
            await memory.forget(a, memory=m.id)
        with pytest.raises(PermissionDeniedError):
            await a.execute("DELETE type::record('memory', $m);", m=m.id)
    async with _agent(url, "b") as b:
        assert (await memory.get(b, memory=m.id)).content == "b's own note"
        await memory.forget(b, memory=m.id)
        assert await b.execute("SELECT VALUE id FROM memory;") == [[]]


async def test_an_agent_cannot_forget_a_memory_under_an_operators_distrust(url: str) -> None:
    """Finding 9, second half: b's forget of a memory the operator distrusted left the
    distrust standing (b may not delete it), so the facts citing the memory stayed hidden by a
    cause naming a memory that was gone. The forget is refused whole: the memory, its fact
    and the distrust stay as the operator left them (the owner's forget shows the fact)."""
    async with _agent(url, "b") as b:
        m = await memory.remember(b, scope="team", content="b's claim")
        (f,) = await graph.assert_facts(b, facts=[_fact("claims")], scope="team", source=m.id)
    async with Store(url) as root:
        await provenance.invalidate(root, memory=m.id, reason="operator: false claim")
    before = await _state(url, m.id, f.id)
    async with _agent(url, "b") as b:
        with pytest.raises(PermissionDeniedError):
            await memory.forget(b, memory=m.id)
    assert await _state(url, m.id, f.id) == before
    async with Store(url) as root:
        await memory.forget(root, memory=m.id)
        assert [x.id for x in await graph.facts(root, scope="team")] == [f.id]


EDGE_LIFTS = [
    "DELETE type::record('sourced_from', [$m, $trace]);",
    "DELETE type::record('derived_from', [$d, $m]);",
]


@pytest.mark.parametrize("statement", EDGE_LIFTS)
async def test_an_agent_cannot_cut_a_hidden_memory_from_its_distrusted_source(
    url: str, statement: str
) -> None:
    """The same lift in two steps: delete the provenance edge through which the distrust
    reaches the memory, then clear its causes (which then no longer reach it). A provenance
    edge of a hidden memory goes only with one of its ends."""
    tb, m, d, f = await _quarantined(url)
    before = await _state(url, m, f), await _state(url, d, f)
    async with _agent(url, "b") as b:
        with pytest.raises(PermissionDeniedError):
            await b.execute(
                statement, m=m, d=d, trace=str(RecordId("run_event", [tb.run_id, tb.seq]))
            )
    assert (await _state(url, m, f), await _state(url, d, f)) == before


async def test_an_agent_cannot_forget_a_memory_under_a_quarantine_of_its_run(url: str) -> None:
    """Forgetting b's memory hidden by the operator's distrust of b's run would drop the fact's
    source edge, and with it the fact's only cause: the fact would be shown again."""
    _, m, _, f = await _quarantined(url)
    before = await _state(url, m, f)
    async with _agent(url, "b") as b:
        with pytest.raises(PermissionDeniedError):
            await memory.forget(b, memory=m)
    assert await _state(url, m, f) == before
