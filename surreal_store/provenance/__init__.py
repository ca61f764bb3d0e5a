"""Decisions and the provenance graph: where a memory came from, what depends on a source, why
a decision was taken, and distrusting a source with everything derived from it.

::

    await provenance.attach(store, memory=m.id, sources=[
        provenance.RunTrace(run_id="r1", seq=3),
        provenance.MemoryDerivation(parent=other.id, how="summarise"),
    ])
    d = await provenance.record_decision(store, task="reply", action="answer", confidence=0.8,
                                         used=hits)
    graph = await provenance.why(store, decision=d.id)
    receipt = await provenance.invalidate(store, source=provenance.RunTrace(run_id="r1", seq=3),
                                          reason="tool returned garbage")

Facts of the knowledge graph (:mod:`surreal_store.graph`) take part: a decision may use facts
(``used=[fact, ...]``), ``lineage(fact=...)`` and ``why`` walk through them to the runs they
came from, and ``invalidate`` / ``restore`` / ``impact`` of a source reach the facts citing it
or any memory derived from it (``receipt.facts``, ``impact.facts``), with the same causes as
memories (schema 023).

Graph questions are answered by recursive graph queries, one per 256 levels (the engine's
recursion limit). An invalidation cascade is one transaction.

The package holds one idea a module: ``_attach``, ``_decisions``, ``_graph`` (the answer's
model and renderings), ``_walks`` (upstream: lineage, why) and ``_trust`` (downstream: impact,
invalidate, restore). The facts themselves live in ``surreal_store._facts``, below memory.
"""

from .._facts import (
    GraphCheckpoint,
    MemoryDerivation,
    Provenance,
    RunTrace,
    StateSnapshot,
    UserAnnotation,
    parse_provenance,
)
from ._attach import attach
from ._decisions import (
    Decision,
    SuccessRate,
    decisions_for_commit,
    decisions_for_task,
    get_decision,
    record_decision,
    record_outcome,
    success_rates,
)
from ._graph import Edge, Node, ProvenanceGraph
from ._trust import Impact, InvalidationReceipt, Restored, impact, invalidate, restore
from ._trust import SourceRef as SourceRef
from ._walks import lineage, why

__all__ = [
    "Decision",
    "Edge",
    "GraphCheckpoint",
    "Impact",
    "InvalidationReceipt",
    "MemoryDerivation",
    "Node",
    "Provenance",
    "ProvenanceGraph",
    "Restored",
    "RunTrace",
    "StateSnapshot",
    "SuccessRate",
    "UserAnnotation",
    "attach",
    "decisions_for_commit",
    "decisions_for_task",
    "get_decision",
    "impact",
    "invalidate",
    "lineage",
    "parse_provenance",
    "record_decision",
    "record_outcome",
    "restore",
    "success_rates",
    "why",
]
