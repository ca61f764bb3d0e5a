"""Upstream walks: where a memory came from (lineage) and why a decision was taken."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any, Final

from .._api import public
from .._errors import NotFoundError, ValidationError
from .._executor import Executor
from .._ids import decision_key, memory_key
from .._types import RecordId
from ._decisions import DECISION_FIELDS, Decision
from ._graph import Edge, Node, ProvenanceGraph

__all__ = ["lineage", "why"]

# The engine's recursion limit: one query walks at most this many levels.
_PAGE: Final = 256


_MEMORY_NODE: Final = (
    "id, scope, key, kind, content, invalidated_at, invalidated_reason, created_at"
)


def _upstream_page(depth: int, extra: str) -> str:
    """A page of lineage: the derivation and source edges up to ``depth`` levels above
    ``$from`` (0: only the starts themselves; at most :data:`_PAGE`), the memories they reach
    with their fields, the sources' records, and ``extra`` fields.

    One walk over the edges themselves: walking to the memories and then reading each
    memory's edges again costs a fifth more. Sent as JSON text: decoding the engine's own
    encoding of many small records costs more than the graph walk."""
    hop = "(derived_from, sourced_from)"
    first = f"$from->{hop}" if depth >= 1 else "[]"
    deeper = (
        f"array::flatten((SELECT VALUE @.{{1..{depth - 1}+collect}}(.out->{hop}) FROM $first))"
        if depth >= 2
        else "[]"
    )
    return f"""
LET $first = {first};
LET $edges = (SELECT in, out, how FROM array::union($first, {deeper}));
encoding::json::encode({{
    edges: $edges,
    rows: (SELECT {_MEMORY_NODE}
        FROM array::union($from, $edges[WHERE record::tb(out) = 'memory'].out)),
    sources: (SELECT * FROM array::distinct($edges[WHERE record::tb(out) != 'memory'].out)),
    {extra}
}});
"""


def _memory_node(row: dict[str, Any]) -> Node:
    """The node of a page row (a fresh dict from the page's JSON: its fields are taken over,
    not copied, as this runs once per memory of the answer)."""
    node_id = row.pop("id")
    row.pop("parents", None)
    row.pop("sources", None)
    content = row.get("content") or ""
    # Cut at a word, not inside one.
    label = textwrap.shorten(content, 60, placeholder="...") if len(content) > 60 else content
    return Node(node_id, "memory", label, row)


def _source_node(row: Mapping[str, Any]) -> Node:
    rid = str(row["id"])
    data = {
        k: v
        for k, v in row.items()
        if k not in ("id", "state_json", "data", "metadata_data", "type", "metadata_type")
    }
    table = rid.partition(":")[0]
    if table == "run_event":
        run = str(row.get("run", "")).partition(":")[2]
        label = f"run {run} event {row.get('seq')}: {row.get('kind', '')}"
    elif table == "commit":
        label = f"commit {rid.partition(':')[2][:12]}: {row.get('message', '')}"
    elif table == "snapshot":
        label = f"state of commit {rid.partition(':')[2][:12]}"
    elif table == "lg_checkpoint":
        table = "checkpoint"
        label = f"thread {row.get('thread_id')} checkpoint {row.get('checkpoint_id')}"
    else:
        label = f"{row.get('user', '')}: {row.get('note', '')}"
    return Node(rid, table, label, data)  # type: ignore[arg-type]


async def _upstream(
    db: Executor,
    starts: Sequence[RecordId],
    graph: ProvenanceGraph,
    max_depth: int | None,
    *,
    prelude: str = "",
    extra: str = "",
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Add the lineage of ``starts`` to ``graph``: memories, edges, sources and roots.

    ``prelude`` (statements that set ``$from``), ``extra`` (more fields of the page's JSON) and
    ``params`` go into the first page's query, so a caller's own lookup costs no round trip;
    the first page is returned."""
    frontier = list(dict.fromkeys(starts))
    depth_left = max_depth
    sources: set[str] = set()
    unsourced: set[str] = set()
    expanded: set[str] = set()  # memories whose edges (all of them) have been read
    first: dict[str, Any] | None = None
    while frontier or first is None:
        depth = _PAGE if depth_left is None else min(_PAGE, depth_left)
        if first is None:
            text = prelude + _upstream_page(depth, extra)
            raw = await db.query_required_single(
                text,
                str,
                idempotent=True,
                **(params or {}),
                **({"from": frontier} if not prelude else {}),
            )
        else:
            text = _upstream_page(depth, "")
            raw = await db.query_required_single(text, str, idempotent=True, **{"from": frontier})
        page = json.loads(raw)
        if first is None:
            first = page
        # The page's starts (the prelude's on its page) have had their edges read; at depth 0
        # there were none to read.
        used = page.get("used") or []
        starts = [u["out"] for u in used] if prelude and first is page else frontier
        starts_here = {str(m) for m in starts} if depth else set()
        with_edges: set[str] = set()
        for e in page["edges"]:
            child, target = e["in"], e["out"]
            with_edges.add(child)
            if target.startswith("memory:"):
                graph.edges.append(Edge(child, target, "derived_from", {"how": e["how"]}))
            else:
                graph.edges.append(Edge(child, target, "sourced_from"))
                sources.add(target)
        expanded |= with_edges | starts_here
        unsourced |= starts_here - with_edges
        for row in page["rows"]:
            if row.get("id") is None:
                raise NotFoundError("no such memory")
            node = _memory_node(row)
            graph.nodes.setdefault(node.id, node)
        for row in page["sources"]:
            if row:
                src_node = _source_node(row)
                graph.nodes[src_node.id] = src_node
        if depth_left is not None:
            depth_left -= depth
            if depth_left <= 0:
                break
        # Memories reached but not expanded (the page's last level): the next page starts there.
        frontier = [
            RecordId("memory", m.partition(":")[2])
            for m in graph.nodes
            if m.startswith("memory:") and m not in expanded
        ]
    graph.edges = list(dict.fromkeys(graph.edges))
    graph.roots = sorted({*graph.roots, *sources, *unsourced})
    return first


@public
async def lineage(db: Executor, *, memory: str, max_depth: int | None = None) -> ProvenanceGraph:
    """Where ``memory`` came from: its derivation ancestors (up to ``max_depth`` levels), the
    sources they cite, and the roots. One query per 256 levels, plus one for the sources."""
    if max_depth is not None and (
        isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0
    ):
        raise ValidationError("max_depth must be an int >= 0")
    graph = ProvenanceGraph()
    mid = RecordId("memory", memory_key(memory))
    await _upstream(db, [mid], graph, max_depth)
    if str(mid) not in graph.nodes:
        raise NotFoundError(f"no memory {mid.key}")
    return graph


# The decision, its used edges and the first page of their lineage, in one query.
_WHY = f"""
LET $d = (SELECT {DECISION_FIELDS} FROM ONLY $id);
IF $d = NONE {{ THROW 'not_found: no decision ' + record::id($id) }};
LET $used = $id->used.{{out, rank, score}};
LET $from = $used.out;
"""


def _key(value: Any) -> Any:
    return value.partition(":")[2] if isinstance(value, str) and ":" in value else value


@public
async def why(db: Executor, *, decision: str) -> ProvenanceGraph:
    """Why a decision was taken: the decision, the memories it used (edges carry rank and
    score), their lineage, and the runs, events, commits and people at the roots."""
    rid = RecordId("decision", decision_key(decision))
    graph = ProvenanceGraph()
    first = await _upstream(
        db, [], graph, None, prelude=_WHY, extra="decision: $d, used: $used,", params={"id": rid}
    )
    row = dict(first["decision"])
    for name in ("id", "commit", "agent"):
        row[name] = _key(row.get(name))
    d = Decision.model_validate(row)
    graph.nodes[str(rid)] = Node(
        str(rid), "decision", f"{d.task}: {d.action}", d.model_dump(exclude={"id"})
    )
    for u in sorted(first["used"] or [], key=lambda u: u["rank"]):
        graph.edges.append(
            Edge(str(rid), u["out"], "used", {"rank": u["rank"], "score": u.get("score")})
        )
    graph.edges = list(dict.fromkeys(graph.edges))
    return graph
