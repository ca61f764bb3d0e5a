"""The answer to a provenance question: a graph of nodes and edges, and its renderings
(dict, pandas, networkx, SVG)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = ["Edge", "EdgeKind", "Node", "NodeKind", "ProvenanceGraph"]


NodeKind = Literal[
    "memory", "decision", "run_event", "commit", "snapshot", "annotation", "checkpoint"
]
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
    "snapshot": "#b15928", "annotation": "#ff7f00", "checkpoint": "#b15928",
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
