"""``surreal-store demo``: a realistic, deterministic agent history, built once per store.

Three runs of a travel-planning agent with their events, commits on two branches with a merge,
a few hundred memories extracted from run events and summarised from each other, a user's
annotations, decisions that used recalled memories (some with outcomes), one bad run whose
tool output is distrusted, and a small knowledge graph of what the runs found (its facts
sourced from their events; the bad run's hidden). Running it again finds the history there
and builds nothing.
"""

from __future__ import annotations

import contextlib
import random
import textwrap
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from . import agents, branches, commits, graph, memory, provenance, runs
from ._client import Store
from ._errors import AlreadyExistsError, NotFoundError
from .memory import HashingEmbedder, NewMemory
from .provenance import MemoryDerivation, RunTrace, UserAnnotation

__all__ = ["DEMO_DIMENSION", "DemoResult", "seed"]

DEMO_DIMENSION = 256
SPEC = "5e" * 32
AGENT = "trip-planner"
RUNS = ("demo-run-1", "demo-run-2", "demo-run-3")
BAD_RUN = "demo-run-3"

_CITIES = ["Lisbon", "Porto", "Kyoto", "Osaka", "Oslo", "Bergen", "Lima", "Cusco", "Quito"]
_TOPICS = ["hotel", "train", "museum", "restaurant", "weather", "budget", "flight", "visa"]
_FACTS = [
    "the {topic} in {city} costs about {n} euros",
    "the user liked the {topic} options in {city}",
    "{city} {topic} availability is high in {month}",
    "the user wants to avoid {topic} delays around {city}",
    "a {topic} near the centre of {city} was rated {score} out of 10",
]
_MONTHS = ["March", "April", "May", "June", "September", "October"]


@dataclass
class DemoResult:
    """What the demo built (or found), for the CLI to show."""

    created: bool
    memories: int = 0
    decisions: list[str] = field(default_factory=list)
    summary: str = ""
    invalidated: list[str] = field(default_factory=list)
    entities: int = 0
    facts: int = 0
    hidden_facts: int = 0


Progress = Callable[[str, int], Awaitable[None] | None]


async def seed(store: Store, *, progress: Progress | None = None) -> DemoResult:
    """Build the demo history in ``store`` unless it is there already."""
    embedder = HashingEmbedder(DEMO_DIMENSION)
    await memory.declare_space(store, model=embedder.model, dimension=embedder.dimension)
    try:
        await runs.get_run(store, run_id=RUNS[0])
        return await _describe(store, created=False)
    except NotFoundError:
        pass

    async def step(label: str, n: int = 1) -> None:
        if progress is not None:
            maybe = progress(label, n)
            if maybe is not None:
                await maybe

    rng = random.Random(7)
    with contextlib.suppress(AlreadyExistsError):
        await agents.register(store, name=AGENT, kind="planner", agent_id=AGENT)
    # Commits: main, an experiment branch from its first commit, merged back.
    c1 = await commits.commit(
        store, state={"goal": "plan a trip", "cities": []}, message="start", author=AGENT
    )
    await branches.create(store, name="experiment", at=c1.id)
    await commits.commit(
        store, state={"goal": "plan a trip", "cities": ["Kyoto"]}, message="try Japan",
        author=AGENT, branch="experiment",
    )  # fmt: skip
    await commits.commit(
        store, state={"goal": "plan a trip", "cities": ["Lisbon", "Porto"]},
        message="shortlist Portugal", author=AGENT, branch="main",
    )  # fmt: skip
    merged = await commits.merge(
        store, into="main", branch="experiment", author=AGENT, resolve="ours",
        message="merge the Japan experiment",
    )  # fmt: skip
    await step("commits", 4)

    # Runs and their events; every tool result yields facts.
    items: list[tuple[NewMemory, list[Any]]] = []
    calls: list[tuple[str, int, str, str]] = []  # run, seq, city, topic
    for r, run_id in enumerate(RUNS):
        await runs.create_run(store, spec_digest=SPEC, agent_name=AGENT, run_id=run_id)
        await runs.append_event(store, run_id=run_id, kind="graph_started", payload={})
        for e in range(12):
            city, topic = rng.choice(_CITIES), rng.choice(_TOPICS)
            event = await runs.append_event(
                store, run_id=run_id, kind="tool_called",
                payload={"tool": f"search_{topic}", "city": city, "ok": run_id != BAD_RUN},
            )  # fmt: skip
            calls.append((run_id, event.seq, city, topic))
            for f in range(5):
                n = rng.randint(3, 300)
                text = _FACTS[(e + f) % len(_FACTS)].format(
                    topic=topic, city=city, n=n, score=4 + n % 7, month=rng.choice(_MONTHS)
                )
                items.append(
                    (
                        NewMemory(
                            content=f"{text} (run {r + 1}, call {e + 1})",
                            kind="fact",
                            key=f"{city.lower()}/{topic}",
                            tags=[city.lower(), topic],
                        ),
                        [RunTrace(run_id=run_id, seq=event.seq)],
                    )
                )
        await runs.complete(store, run_id=run_id)
        await step("runs")
    # Facts, each in one transaction with its provenance.
    facts: list[memory.Memory] = []
    for item, sources in items:
        facts.append(
            await memory.remember(
                store,
                **item.model_dump(exclude={"embedding"}, exclude_none=True),
                embedder=embedder,
                commit=merged.id,
                provenance=sources,
            )
        )
        await step("facts")
    # Summaries of five facts each, and summaries of summaries.
    summaries: list[memory.Memory] = []
    for i in range(0, len(facts), 5):
        group = facts[i : i + 5]
        text = f"summary {i // 5 + 1}: " + "; ".join(f.content.split(" (")[0] for f in group[:2])
        summaries.append(
            await memory.remember(
                store,
                content=text,
                kind="summary",
                embedder=embedder,
                commit=merged.id,
                provenance=[MemoryDerivation(parent=f.id, how="summarise") for f in group],
            )
        )
        await step("summaries")
    tops: list[memory.Memory] = []
    for i in range(0, len(summaries), 6):
        group = summaries[i : i + 6]
        tops.append(
            await memory.remember(
                store,
                # Whole words: the first 60 characters' worth of the first summary.
                content=f"trip overview {i // 6 + 1}: {textwrap.wrap(group[0].content, 60)[0]}",
                kind="overview",
                embedder=embedder,
                commit=merged.id,
                provenance=[MemoryDerivation(parent=s.id, how="merge") for s in group],
            )
        )
    for note in ("prefers trains to flights", "travels in spring", "budget is 3000 euros"):
        await memory.remember(
            store, content=f"the user {note}", kind="preference", embedder=embedder,
            commit=merged.id, provenance=[UserAnnotation(user="alice", note=note)],
        )  # fmt: skip
    await step("summaries")
    # Decisions that used what recall returned.
    decisions: list[str] = []
    for q, (task, action) in enumerate(
        [
            ("choose city", "Lisbon"),
            ("choose transport", "train"),
            ("choose hotel", "centre"),
            ("choose month", "May"),
            ("choose city", "Kyoto"),
        ]
    ):
        hits = await memory.recall(store, text=f"{action} {task}", embedder=embedder, k=5)
        d = await provenance.record_decision(
            store, task=task, action=action, confidence=round(0.55 + 0.08 * q, 2),
            rationale=f"recall favoured {action}", alternatives=["wait", "ask the user"],
            used=hits, commit=merged.id,
        )  # fmt: skip
        if q < 4:
            await provenance.record_outcome(
                store, decision=d.id, outcome={"user_accepted": q % 3 != 2}, success=q % 3 != 2
            )
        decisions.append(d.id)
        await step("decisions")
    # The bad run: its tool output is distrusted, and everything made from it goes.
    for seq in range(2, 14):
        await provenance.invalidate(
            store, source=RunTrace(run_id=BAD_RUN, seq=seq), by="alice",
            reason="the search tool of run 3 returned stale prices",
        )  # fmt: skip
    await step("invalidation")
    await _graph(store, calls)
    await step("graph")
    return await _describe(store, created=True)


_COUNTRIES = {
    "Lisbon": "Portugal", "Porto": "Portugal", "Kyoto": "Japan", "Osaka": "Japan",
    "Oslo": "Norway", "Bergen": "Norway", "Lima": "Peru", "Cusco": "Peru", "Quito": "Ecuador",
}  # fmt: skip


async def _graph(store: Store, calls: list[tuple[str, int, str, str]]) -> None:
    """A small knowledge graph of what the runs found: each tool call says that its city
    offers its topic (a fact sourced from that run event; the same fact from a later run is
    already known), the user's notes give the geography and a preference, and the trip's
    destination changes from run 1 to run 2 (a single-valued predicate: superseded, kept).
    Run 3 is distrusted by now, so the facts only it found are hidden from the start."""
    cities = sorted({c for _, _, c, _ in calls})
    topics = sorted({t for _, _, _, t in calls})
    await graph.create_entities(
        store,
        entities=[
            graph.NewEntity(name="the user", type="person", summary="plans a spring trip"),
            *(graph.NewEntity(name=c, type="city", summary=f"a city in {_COUNTRIES[c]}")
              for c in cities),
            *(graph.NewEntity(name=n, type="country") for n in sorted(set(_COUNTRIES.values()))),
            *(graph.NewEntity(name=t, type="service") for t in topics),
        ],
    )  # fmt: skip
    alice = UserAnnotation(user="alice", note="the shortlist's geography and the user's taste")
    await graph.assert_facts(
        store,
        facts=[
            *(graph.NewFact(subject=c, predicate="located_in", object=_COUNTRIES[c])
              for c in cities),
            graph.NewFact(subject="the user", predicate="prefers", object="train"),
        ],
        source=alice,
    )  # fmt: skip
    for run_id, seq, city, topic in calls:
        await graph.assert_facts(
            store,
            facts=[graph.NewFact(subject=city, predicate="offers", object=topic)],
            source=RunTrace(run_id=run_id, seq=seq),
        )
    await graph.declare_predicate(store, name="plans_trip_to", single_valued=True)
    for run_id, city in ((RUNS[0], "Lisbon"), (RUNS[1], "Kyoto")):
        await graph.assert_facts(
            store,
            facts=[graph.NewFact(subject="the user", predicate="plans_trip_to", object=city)],
            source=RunTrace(run_id=run_id, seq=1),
        )


async def _describe(store: Store, *, created: bool) -> DemoResult:
    count = await store.query_required_single("RETURN count(SELECT id FROM memory);", int)
    decisions = [
        d
        for task in ("choose city", "choose transport", "choose hotel", "choose month")
        for d in await provenance.decisions_for_task(store, task=task)
    ]
    overview = await store.query_single(
        "SELECT VALUE record::id(id) FROM memory WHERE kind = 'summary' ORDER BY content LIMIT 1;",
        str,
    )
    hidden = await store.query(
        "SELECT VALUE record::id(id) FROM memory WHERE invalidated_at != NONE ORDER BY content;",
        str,
    )
    counts = await store.query_required_single(
        "RETURN { entities: count(SELECT id FROM entity WHERE retracted_at = NONE), "
        "facts: count(SELECT id FROM fact WHERE retracted_at = NONE), "
        "hidden: count(SELECT id FROM fact WHERE retracted_at = NONE "
        "AND invalidated_at != NONE) };",
        dict,
    )
    return DemoResult(
        created=created,
        memories=count,
        entities=counts["entities"],
        facts=counts["facts"],
        hidden_facts=counts["hidden"],
        decisions=[d.id for d in decisions],
        summary=overview or "",
        invalidated=hidden,
    )
