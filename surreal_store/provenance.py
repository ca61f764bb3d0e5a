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

Graph questions are answered by recursive graph queries, one per 256 levels (the engine's
recursion limit). An invalidation cascade is one transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict

from . import _invalidation
from . import branches as _branches
from ._api import public
from ._client import Executor
from ._errors import NotFoundError, ValidationError
from ._facts import (
    ATTACH_BLOCK,
    MemoryDerivation,
    Provenance,
    RunTrace,
    StateSnapshot,
    UserAnnotation,
    attach_params,
    parse_provenance,
)
from ._ids import commit_key, decision_key, memory_key
from ._types import Key, Model, RecordId, json_value
from ._types import check_text as _text
from .memory import RecallHit

__all__ = [
    "Decision",
    "Edge",
    "Impact",
    "InvalidationReceipt",
    "MemoryDerivation",
    "Node",
    "Provenance",
    "ProvenanceGraph",
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

_PAGE: Final = 256


@public
async def attach(
    db: Executor, *, memory: str, sources: Sequence[Provenance | Mapping[str, Any]]
) -> None:
    """Record where ``memory`` came from, all facts in one transaction. Every fact is checked
    before anything is written; attaching the same fact again changes nothing."""
    facts = [parse_provenance(s) for s in sources]
    mid = RecordId("memory", memory_key(memory))
    text = (
        "BEGIN;\nIF !record::exists($p_memory) { THROW 'not_found: no memory ' "
        "+ record::id($p_memory) };\n" + ATTACH_BLOCK + "COMMIT;"
    )
    await db.execute(text, **attach_params(mid, facts))


# -- decisions ---------------------------------------------------------------------------------


class Decision(Model):
    """A recorded decision; ``outcome`` / ``success`` / ``outcome_at`` once its outcome is in."""

    model_config = ConfigDict(frozen=True)

    id: Key
    task: str
    action: str
    rationale: str
    alternatives: list[str]
    confidence: float
    commit: Key | None = None
    agent: Key | None = None
    outcome: dict[str, Any] | None = None
    success: bool | None = None
    outcome_at: dt.datetime | None = None
    created_at: dt.datetime


_DECISION_FIELDS = (
    "id, task, action, rationale, alternatives, confidence, commit, agent, outcome, success, "
    "outcome_at, created_at"
)

_RECORD_DECISION = f"""
BEGIN;
FOR $u IN $used {{
    IF !record::exists($u.out) {{
        THROW 'not_found: memory ' + record::id($u.out) + ' does not exist';
    }};
}};
CREATE ONLY $id CONTENT {{
    task: $task, action: $action, rationale: $rationale, alternatives: $alternatives,
    confidence: $confidence, commit: $commit, agent: $agent
}} RETURN NONE;
INSERT RELATION INTO used $used.map(|$u| object::extend($u, {{ in: $id }})) RETURN NONE;
SELECT {_DECISION_FIELDS} FROM ONLY $id;
COMMIT;
"""


@public
async def record_decision(
    db: Executor,
    *,
    task: str,
    action: str,
    confidence: float,
    rationale: str = "",
    alternatives: Sequence[str] = (),
    used: Sequence[RecallHit | str | tuple[str, float | None]] = (),
    commit: str | None = None,
    branch: str | None = None,
    agent: str | None = None,
) -> Decision:
    """Record a decision and the memories it ``used`` (recall hits, ids, or ``(id, score)``
    pairs, best first: their position is the rank), in one transaction."""
    for label, value in (("task", task), ("action", action)):
        if not isinstance(value, str) or not value:
            raise ValidationError(f"decision {label} must be a non-empty string")
    if not isinstance(rationale, str):
        raise ValidationError("rationale must be a string")
    if isinstance(alternatives, str) or not all(isinstance(a, str) for a in alternatives):
        raise ValidationError("alternatives must be a list of strings")
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise ValidationError("confidence must be a number")
    if not 0.0 <= float(confidence) <= 1.0:
        raise ValidationError(f"confidence must be within [0, 1], not {confidence!r}")
    if commit is not None and branch is not None:
        raise ValidationError("give commit= or branch=, not both")
    if branch is not None:
        head = await _branches.head(db, name=branch)
        if head is None:
            raise NotFoundError(f"no branch {branch}")
        commit = head
    key = uuid.uuid4().hex
    rows: list[dict[str, Any]] = []
    for rank, u in enumerate(used, 1):
        mid, score = (
            (u.memory.id, u.score)
            if isinstance(u, RecallHit)
            else (u, None)
            if isinstance(u, str)
            else (u[0], u[1])
        )
        target = RecordId("memory", memory_key(mid))
        rows.append(
            {
                "id": RecordId("used", [key, target.key]),
                "out": target,
                "rank": rank,
                "score": None if score is None else float(score),
            }
        )
    if len({r["out"] for r in rows}) != len(rows):
        raise ValidationError("a memory is listed twice in used")
    return await db.query_required_single(
        _RECORD_DECISION,
        Decision,
        id=RecordId("decision", key),
        task=task,
        action=action,
        rationale=rationale,
        alternatives=list(alternatives),
        confidence=float(confidence),
        commit=RecordId("commit", commit_key(commit)) if commit else None,
        agent=RecordId("agent", agent) if agent else None,
        used=rows,
    )


_RECORD_OUTCOME = f"""
BEGIN;
IF !record::exists($id) {{ THROW 'not_found: no decision ' + record::id($id) }};
UPDATE ONLY $id SET outcome = $outcome, success = $success, outcome_at = time::now()
    RETURN NONE;
SELECT {_DECISION_FIELDS} FROM ONLY $id;
COMMIT;
"""


@public
async def record_outcome(
    db: Executor, *, decision: str, outcome: Mapping[str, Any], success: bool
) -> Decision:
    """Record how the decision turned out, once: a second outcome raises
    :class:`AlreadyExistsError` and changes nothing."""
    if not isinstance(outcome, Mapping):
        raise ValidationError("outcome must be a mapping")
    if not isinstance(success, bool):
        raise ValidationError("success must be a bool")
    return await db.query_required_single(
        _RECORD_OUTCOME,
        Decision,
        id=RecordId("decision", decision_key(decision)),
        outcome=json_value(dict(outcome), what="outcome"),
        success=success,
    )


@public
async def get_decision(db: Executor, *, decision: str) -> Decision:
    """The decision, or :class:`NotFoundError`."""
    key = decision_key(decision)
    found = await db.query_single(
        f"SELECT {_DECISION_FIELDS} FROM ONLY $id;", Decision, id=RecordId("decision", key)
    )
    if found is None:
        raise NotFoundError(f"no decision {key}")
    return found


@public
async def decisions_for_commit(db: Executor, *, commit: str) -> list[Decision]:
    """The decisions recorded at ``commit``, newest first."""
    return await db.query(
        f"SELECT {_DECISION_FIELDS} FROM decision WHERE commit = $commit ORDER BY created_at DESC;",
        Decision,
        commit=RecordId("commit", commit_key(commit)),
    )


@public
async def decisions_for_task(
    db: Executor, *, task: str, limit: int | None = None
) -> list[Decision]:
    """The decisions for ``task``, newest first."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValidationError("limit must be a positive int")
    text = (
        f"SELECT {_DECISION_FIELDS} FROM decision WHERE task = $task ORDER BY created_at DESC"
        + (" LIMIT $limit;" if limit is not None else ";")
    )
    return await db.query(text, Decision, task=task, limit=limit)


class SuccessRate(Model):
    """Decisions per task or action: how many, how many have an outcome, how many succeeded,
    and ``rate`` = succeeded / with an outcome (``None`` before any outcome)."""

    model_config = ConfigDict(frozen=True)

    key: str
    decisions: int
    with_outcome: int
    succeeded: int
    rate: float | None


_RATES: Final = {
    by: f"""
SELECT {by} AS key, count() AS decisions, count(success != NONE) AS with_outcome,
    count(success = true) AS succeeded
FROM decision GROUP BY {by} ORDER BY key;
"""
    for by in ("task", "action")
}


class _Counts(BaseModel):
    key: str
    decisions: int
    with_outcome: int
    succeeded: int


@public
async def success_rates(db: Executor, *, by: Literal["task", "action"]) -> list[SuccessRate]:
    """Success rate per task or per action, counted in the database."""
    if by not in _RATES:
        raise ValidationError("by must be 'task' or 'action'")
    rows = await db.query(_RATES[by], _Counts)
    return [
        SuccessRate(
            **r.model_dump(), rate=(r.succeeded / r.with_outcome) if r.with_outcome else None
        )
        for r in rows
    ]


# -- the graph ---------------------------------------------------------------------------------

NodeKind = Literal["memory", "decision", "run_event", "commit", "snapshot", "annotation"]
EdgeKind = Literal["used", "derived_from", "sourced_from"]


@dataclass(frozen=True)
class Node:
    """A memory, decision or source. ``id`` is ``table:key``; ``data`` its stored fields."""

    id: str
    kind: NodeKind
    label: str
    data: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Edge:
    """``source`` -> ``target`` (node ids), as stored: decision -used-> memory, memory
    -derived_from-> memory, memory -sourced_from-> source."""

    source: str
    target: str
    kind: EdgeKind
    data: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass
class ProvenanceGraph:
    """Nodes and edges of a provenance question, and its ``roots``: the sources at the top of
    the lineage (and memories with no recorded origin)."""

    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    roots: list[str] = field(default_factory=list)

    def of_kind(self, kind: NodeKind) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready once datetimes are encoded)."""
        return {
            "nodes": [
                {"id": n.id, "kind": n.kind, "label": n.label, "data": n.data}
                for n in self.nodes.values()
            ],
            "edges": [
                {"source": e.source, "target": e.target, "kind": e.kind, "data": e.data}
                for e in self.edges
            ],
            "roots": list(self.roots),
        }

    def to_pandas(self) -> tuple[Any, Any]:
        """``(nodes, edges)`` as pandas DataFrames (pandas comes with the ``notebook`` extra)."""
        try:
            import pandas as pd  # type: ignore[import-untyped, unused-ignore]
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("to_pandas needs pandas: pip install pandas") from exc
        nodes = pd.DataFrame(
            [{"id": n.id, "kind": n.kind, "label": n.label, "root": n.id in self.roots}
             for n in self.nodes.values()],
            columns=["id", "kind", "label", "root"],
        )  # fmt: skip
        edges = pd.DataFrame(
            [
                {"source": e.source, "target": e.target, "kind": e.kind, **e.data}
                for e in self.edges
            ],
            columns=["source", "target", "kind", "how", "rank", "score"],
        )
        return nodes, edges

    def _repr_html_(self) -> str:
        return self.to_svg()

    def to_svg(self, *, width: int = 900) -> str:
        """An SVG drawing: the graph in layers from its start (a decision or memory, left) to
        its roots (right); invalidated memories in red."""
        return _svg(self, width=width)

    def to_networkx(self) -> Any:
        """A ``networkx.MultiDiGraph`` (networkx comes with the ``notebook`` extra)."""
        try:
            import networkx as nx  # type: ignore[import-not-found, import-untyped, unused-ignore]
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("to_networkx needs networkx: pip install networkx") from exc
        g = nx.MultiDiGraph()
        for n in self.nodes.values():
            # A memory's own "kind" (fact, summary...) is kept as memory_kind.
            attrs = {("memory_kind" if k == "kind" else k): v for k, v in n.data.items()}
            g.add_node(n.id, **{**attrs, "kind": n.kind, "label": n.label})
        for e in self.edges:
            g.add_edge(e.source, e.target, key=e.kind, **{**e.data, "kind": e.kind})
        return g


_COLOURS: Final = {
    "decision": "#6a3d9a", "memory": "#1f78b4", "run_event": "#33a02c", "commit": "#b15928",
    "snapshot": "#b15928", "annotation": "#ff7f00",
}  # fmt: skip


def _svg(graph: ProvenanceGraph, *, width: int) -> str:
    from html import escape

    targets = {e.target for e in graph.edges}
    layer: dict[str, int] = {n: 0 for n in graph.nodes if n not in targets}
    for _ in range(len(graph.nodes)):  # longest path from the starts, bounded
        changed = False
        for e in graph.edges:
            if e.source in layer and layer.get(e.target, -1) < layer[e.source] + 1:
                layer[e.target] = layer[e.source] + 1
                changed = True
        if not changed:
            break
    columns: dict[int, list[str]] = {}
    for node_id in graph.nodes:
        columns.setdefault(layer.get(node_id, 0), []).append(node_id)
    step_x = max(140, width // max(1, len(columns)))
    row_h = 22
    height = max(len(c) for c in columns.values()) * row_h + 20 if columns else 40
    pos = {
        n: (20 + x * step_x, 20 + y * row_h)
        for x, col in columns.items()
        for y, n in enumerate(sorted(col))
    }
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{len(columns) * step_x + 40}" '
        f'height="{height}" font-family="sans-serif" font-size="11">'
    ]
    for e in graph.edges:
        if e.source in pos and e.target in pos:
            (x1, y1), (x2, y2) = pos[e.source], pos[e.target]
            parts.append(f'<line x1="{x1 + 6}" y1="{y1}" x2="{x2 - 6}" y2="{y2}" stroke="#bbb"/>')
    for node_id, (x, y) in pos.items():
        node = graph.nodes[node_id]
        colour = "#e31a1c" if node.data.get("invalidated_at") else _COLOURS.get(node.kind, "#555")
        label = escape(f"{node.kind}: {node.label}"[:40])
        parts.append(f'<circle cx="{x}" cy="{y}" r="5" fill="{colour}"/>')
        parts.append(
            f'<text x="{x + 8}" y="{y + 4}" fill="#222"><title>{escape(node_id)}</title>'
            f"{label}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


_MEMORY_NODE = "id, scope, key, kind, content, invalidated_at, invalidated_reason, created_at"

# A page of lineage: the derivation and source edges up to {depth} levels above $from (256 at
# most: the engine's recursion limit), the memories they reach with their fields, and the
# sources' records. One walk over the edges themselves: walking to the memories and then reading
# each memory's edges again cost a fifth more. Sent as JSON text: decoding the engine's own
# encoding of many small records costs more than the graph walk.
_UPSTREAM_PAGE = """
LET $first = {first};
LET $edges = (SELECT in, out, how FROM array::union($first, {deeper}));
encoding::json::encode({
    edges: $edges,
    rows: (SELECT {fields} FROM array::union($from, $edges[WHERE record::tb(out) = 'memory'].out)),
    sources: (SELECT * FROM array::distinct($edges[WHERE record::tb(out) != 'memory'].out)),
    {extra}
});
"""
_FIRST_EDGES = "$from->(derived_from, sourced_from)"
_DEEPER_EDGES = (
    "array::flatten((SELECT VALUE @.{1..{rest}+collect}(.out->(derived_from, sourced_from)) "
    "FROM $first))"
)


def _upstream_page(depth: int, extra: str) -> str:
    """The page query for edges up to ``depth`` levels (0: only the starts themselves)."""
    first = _FIRST_EDGES if depth >= 1 else "[]"
    deeper = _DEEPER_EDGES.replace("{rest}", str(depth - 1)) if depth >= 2 else "[]"
    return (
        _UPSTREAM_PAGE.replace("{first}", first)
        .replace("{deeper}", deeper)
        .replace("{fields}", _MEMORY_NODE)
        .replace("{extra}", extra)
    )


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
    data = {k: v for k, v in row.items() if k not in ("id", "state_json", "data")}
    table = rid.partition(":")[0]
    if table == "run_event":
        run = str(row.get("run", "")).partition(":")[2]
        label = f"run {run} event {row.get('seq')}: {row.get('kind', '')}"
    elif table == "commit":
        label = f"commit {rid.partition(':')[2][:12]}: {row.get('message', '')}"
    elif table == "snapshot":
        label = f"state of commit {rid.partition(':')[2][:12]}"
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
LET $d = (SELECT {_DECISION_FIELDS} FROM ONLY $id);
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


# -- impact and invalidation -------------------------------------------------------------------

SourceRef = RunTrace | StateSnapshot | UserAnnotation | RecordId


def _source_record(source: SourceRef | str) -> RecordId:
    if isinstance(source, RunTrace | StateSnapshot | UserAnnotation):
        return source.record
    if isinstance(source, str):
        source = RecordId.parse(source)
    if not isinstance(source, RecordId) or source.table not in (
        "run_event", "commit", "snapshot", "annotation",
    ):  # fmt: skip
        raise ValidationError(f"not a provenance source: {source!r}")
    return source


class Impact(Model):
    """Everything downstream of a source or memory: the memories derived from it (directly or
    transitively; for a memory, itself included) and the decisions that used any of them."""

    model_config = ConfigDict(frozen=True)

    memories: list[str]
    decisions: list[str]


def _one_target(source: SourceRef | str | None, memory: str | None) -> tuple[Any, Any]:
    if (source is None) == (memory is None):
        raise ValidationError("give exactly one of source= or memory=")
    if memory is not None:
        return None, RecordId("memory", memory_key(memory))
    assert source is not None
    return _source_record(source), None


@public
async def impact(
    db: Executor, *, source: SourceRef | str | None = None, memory: str | None = None
) -> Impact:
    """Every memory and decision that depends on ``source`` (a run event, commit, snapshot or
    annotation) or on ``memory``."""
    src, mem = _one_target(source, memory)
    memories, decisions = await _invalidation.downstream(db, source=src, memory=mem)
    return Impact(
        memories=[str(m.key) for m in memories], decisions=[str(d.key) for d in decisions]
    )


class InvalidationReceipt(Model):
    """What one invalidation reached: its cause and every memory derived from it (those already
    invalid keep their first record). :func:`impact` names the decisions that used them."""

    model_config = ConfigDict(frozen=True)

    cause: str
    memories: list[str]


@public
async def invalidate(
    db: Executor,
    *,
    source: SourceRef | str | None = None,
    memory: str | None = None,
    reason: str,
    by: str | None = None,
) -> InvalidationReceipt:
    """Distrust ``source`` (or ``memory``) and hide every memory derived from it, directly or
    transitively, in one transaction; recall then leaves them out.

    A memory stays hidden while any of its causes stands: distrusting a second source of an
    already hidden memory adds that cause (its first ``invalidated_reason`` stays), and
    :func:`restore` of one cause leaves it hidden while another stands. Memories remembered
    later from a distrusted source, or derived from a hidden memory, are hidden from the
    start. Distrusting a standing cause again changes nothing."""
    if not isinstance(reason, str) or not reason:
        raise ValidationError("reason must be a non-empty string")
    _text(reason, "reason")
    if by is not None:
        _text(by, "by")
    src, mem = _one_target(source, memory)
    memories = await _invalidation.add_cause(
        db, source=src, memory=mem, cascade=True, reason=reason, by=by
    )
    return InvalidationReceipt(cause=str(src or mem), memories=[str(m.key) for m in memories])


@public
async def restore(
    db: Executor, *, source: SourceRef | str | None = None, memory: str | None = None
) -> list[str]:
    """Undo :func:`invalidate` of ``source`` / ``memory`` (or :func:`memory.invalidate
    <surreal_store.memory.invalidate>` of ``memory``): it stops being a cause anywhere.
    Returns the ids of the memories that became visible; those that another standing cause
    still reaches stay hidden."""
    src, mem = _one_target(source, memory)
    restored = await _invalidation.remove_cause(db, source=src, memory=mem)
    return [str(r.key) for r in restored]
