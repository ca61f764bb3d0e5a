"""The knowledge graph: entities and the facts between them, bi-temporal and traceable.

::

    await graph.create_entities(store, entities=[graph.NewEntity(name="Alice", type="person"),
                                                 graph.NewEntity(name="Acme", type="org")])
    await graph.declare_predicate(store, name="works_at", single_valued=True)
    await graph.assert_facts(store, facts=[graph.NewFact(subject="Alice", predicate="works_at",
                                                         object="Acme", valid_from=jan_2020)],
                             source=provenance.RunTrace(run_id=run.id, seq=3))
    await graph.add_observations(store, entity="Alice", contents=["prefers tea"])
    view = await graph.entity(store, name="Alice", valid_at=march_1)   # true on March 1
    then = await graph.facts(store, entity="Alice", known_at=march_1)  # believed on March 1

An entity's name is exact and unique within its scope (its id is derived from both, as a
memory's is). A fact is an edge ``entity -fact-> entity`` with a predicate, an optional JSON
value, valid time (``valid_from`` / ``valid_until``: when it holds in the world) and
transaction time (``recorded_at`` / ``retracted_at``: when the store learned and unlearned
it). Nothing is overwritten: retracting, deleting an entity and superseding a single-valued
predicate's value keep what was there, so every read can be asked as of any valid time and
any transaction time. An observation is a memory of the memory layer linked to its entity at a
position (insertion order), so recall, deduplication, the recall index and invalidation apply
to it unchanged.

``source=`` on a write records where it came from, with the provenance kinds of the memory
layer (a run event, a commit, a snapshot, a user annotation, a LangGraph checkpoint, a
memory): facts as ``fact -fact_source-> source`` edges, observations as their memories'
provenance.

The package holds one idea a module: ``_models``, ``_names`` (the checks writes and reads
share), ``_sources`` (``source=``), ``_entities``, ``_assert`` (facts), ``_predicates``,
``_observe`` (observations), ``_reads`` and ``_extract`` (extractors and ``ingest``).
"""

from ._assert import assert_facts, end_facts, retract_facts
from ._entities import create_entities, delete_entities, update_entity
from ._extract import (
    SOURCE_KIND,
    Extraction,
    Extractor,
    Ingested,
    Pattern,
    PatternExtractor,
    ingest,
)
from ._models import (
    DEFAULT_SCOPE,
    Entity,
    EntityVersion,
    EntityView,
    Fact,
    NewEntity,
    NewFact,
    Observation,
    Predicate,
    Subgraph,
    entity_id,
    name_key,
)
from ._observe import (
    OBSERVATION_KIND,
    add_observations,
    add_observations_many,
    delete_observations,
    delete_observations_many,
    observation_memory_id,
)
from ._predicates import declare_predicate
from ._reads import entity, fact_history, facts, open_nodes, predicates, read_graph
from ._sources import Source

# isort: split
# Walks, search, conflicts and resolution (the queries work).
from ._conflicts import Conflict, conflicts
from ._merge import MergeReceipt, MovedFact, merge
from ._resolve import (
    Candidate,
    Resolution,
    candidates,
    resolve_entities,
)
from ._search import EntityHit, FactHit, search_entities, search_facts
from ._walks import MAX_DEPTH, neighbourhood, path

__all__ = [
    "DEFAULT_SCOPE",
    "MAX_DEPTH",
    "OBSERVATION_KIND",
    "SOURCE_KIND",
    "Candidate",
    "Conflict",
    "Entity",
    "EntityHit",
    "EntityVersion",
    "EntityView",
    "Extraction",
    "Extractor",
    "Fact",
    "FactHit",
    "Ingested",
    "MergeReceipt",
    "MovedFact",
    "NewEntity",
    "NewFact",
    "Observation",
    "Pattern",
    "PatternExtractor",
    "Predicate",
    "Resolution",
    "Source",
    "Subgraph",
    "add_observations",
    "add_observations_many",
    "assert_facts",
    "candidates",
    "conflicts",
    "create_entities",
    "declare_predicate",
    "delete_entities",
    "delete_observations",
    "delete_observations_many",
    "end_facts",
    "entity",
    "entity_id",
    "fact_history",
    "facts",
    "ingest",
    "merge",
    "name_key",
    "neighbourhood",
    "observation_memory_id",
    "open_nodes",
    "path",
    "predicates",
    "read_graph",
    "resolve_entities",
    "retract_facts",
    "search_entities",
    "search_facts",
    "update_entity",
]
