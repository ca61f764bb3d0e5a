"""The answer to a provenance question: a graph of nodes and edges, and its renderings
(dict, pandas, networkx, SVG)."""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from html import escape
from typing import Any, Final, Literal

from .. import _frames
from .._errors import ValidationError

__all__ = ["Edge", "EdgeKind", "Node", "NodeKind", "ProvenanceGraph"]


NodeKind = Literal[
    "memory", "fact", "decision", "run_event", "commit", "snapshot", "annotation", "checkpoint"
]
EdgeKind = Literal["used", "derived_from", "sourced_from", "fact_source"]


@dataclass(frozen=True)
class Node:
    """A memory, fact (of the knowledge graph), decision or source. ``id`` is ``table:key``;
    ``data`` its stored fields."""

    id: str
    kind: NodeKind
    label: str
    data: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Edge:
    """``source`` -> ``target`` (node ids), as stored: decision -used-> memory or fact,
    memory -derived_from-> memory, memory -sourced_from-> source, fact -fact_source-> source
    or memory."""

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
        pd = _frames.pandas()
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
        """An SVG drawing: the graph in columns from its start (a decision or memory, left) to
        its roots (right), ordered so that few edges cross, each node a box with its kind and
        its text wrapped by words, and a legend of the colours (red: hidden by an
        invalidation) and of the edges. For a large graph, draw :meth:`collapse` of it."""
        return _svg(self, width=width)

    def collapse(self, *kinds: NodeKind, hidden: bool = False) -> ProvenanceGraph:
        """The graph with less in it: the nodes of each of ``kinds`` in one column merged into
        one node (``"12 run events"``), and with ``hidden``, the memories an invalidation hid
        merged the same way (``"14 hidden memories"``). Edges follow their ends (once per
        pair); a merged node's ``data`` lists its ``members``. A node alone of its kind in its
        column stays as it is."""
        known = set(_NOUNS)
        for kind in kinds:
            if kind not in known:
                raise ValidationError(f"unknown node kind {kind!r}: one of {sorted(known)}")
        layer = _layers(self)
        groups: dict[str, tuple[str, NodeKind, bool]] = {}  # node -> (group id, kind, hidden)
        for n in self.nodes.values():
            is_hidden = hidden and n.kind == "memory" and bool(n.data.get("invalidated_at"))
            if n.kind in kinds or is_hidden:
                tag = "hidden" if is_hidden else n.kind
                groups[n.id] = (f"group:{tag}:{layer[n.id]}", n.kind, is_hidden)
        members: dict[str, list[str]] = {}
        for node_id, (group, _, _) in groups.items():
            members.setdefault(group, []).append(node_id)
        for ids in members.values():  # a group of one is that node: nothing to merge
            if len(ids) == 1:
                del groups[ids[0]]
        out = ProvenanceGraph()
        for n in self.nodes.values():
            if n.id not in groups:
                out.nodes[n.id] = n
                continue
            group, kind, is_hidden = groups[n.id]
            if group in out.nodes:
                continue
            ids = members[group]
            noun = _NOUNS[kind] if len(ids) == 1 else _PLURALS.get(kind, _NOUNS[kind] + "s")
            label = f"{len(ids)} {'hidden ' if is_hidden else ''}{noun}"
            data: dict[str, Any] = {"members": ids, "count": len(ids)}
            if is_hidden:
                data["invalidated_at"] = min(str(self.nodes[i].data["invalidated_at"]) for i in ids)
            out.nodes[group] = Node(group, kind, label, data)
        seen: set[tuple[str, str, str]] = set()
        for e in self.edges:
            source = groups[e.source][0] if e.source in groups else e.source
            target = groups[e.target][0] if e.target in groups else e.target
            if (source, target, e.kind) in seen or source == target:
                continue
            seen.add((source, target, e.kind))
            same = (source, target) == (e.source, e.target)
            out.edges.append(e if same else Edge(source, target, e.kind, {}))
        for r in self.roots:
            mapped = groups[r][0] if r in groups else r
            if mapped not in out.roots:
                out.roots.append(mapped)
        return out

    def to_networkx(self) -> Any:
        """A ``networkx.MultiDiGraph`` (networkx comes with the ``notebook`` extra)."""
        nx = _frames.networkx()
        g = nx.MultiDiGraph()
        for n in self.nodes.values():
            # A memory's own "kind" (fact, summary...) is kept as memory_kind.
            attrs = {("memory_kind" if k == "kind" else k): v for k, v in n.data.items()}
            g.add_node(n.id, **{**attrs, "kind": n.kind, "label": n.label})
        for e in self.edges:
            g.add_edge(e.source, e.target, key=e.kind, **{**e.data, "kind": e.kind})
        return g


_COLOURS: Final = {
    "decision": "#6a3d9a", "memory": "#1f78b4", "fact": "#008b8b", "run_event": "#33a02c",
    "commit": "#b15928",
    "snapshot": "#b15928", "annotation": "#ff7f00", "checkpoint": "#b15928",
}  # fmt: skip
_HIDDEN: Final = "#e31a1c"
_NOUNS: Final = {
    "decision": "decision", "memory": "memory", "fact": "fact", "run_event": "run event",
    "commit": "commit",
    "snapshot": "state snapshot", "annotation": "annotation", "checkpoint": "checkpoint",
}  # fmt: skip
_PLURALS: Final = {"memory": "memories"}
_EDGES: Final = {  # kind: colour, dash, what the legend says
    "used": ("#6a3d9a", "", "used (decision to memory)"),
    "derived_from": ("#7a8a99", "", "derived from"),
    "sourced_from": ("#33a02c", "4 3", "sourced from"),
    "fact_source": ("#008b8b", "4 3", "fact from"),
}
_FONT: Final = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"
_CHAR_W: Final = 6.3  # px per character at 11px (DejaVu Sans, the widest of the family list)
_LINE_H: Final = 13
_CAPTION_H: Final = 14
_MAX_LINES: Final = 4
_GAP_X: Final = 56  # between columns: room for the edges
_GAP_Y: Final = 8
_PAD: Final = 12
_LARGE: Final = 30  # nodes: past this, the legend says how to draw fewer


def _layers(graph: ProvenanceGraph) -> dict[str, int]:
    """Each node's column: the longest path to it from a node nothing points to (bounded)."""
    targets = {e.target for e in graph.edges}
    layer: dict[str, int] = {n: 0 for n in graph.nodes if n not in targets}
    for _ in range(len(graph.nodes)):
        changed = False
        for e in graph.edges:
            if e.source in layer and layer.get(e.target, -1) < layer[e.source] + 1:
                layer[e.target] = layer[e.source] + 1
                changed = True
        if not changed:
            break
    for n in graph.nodes:  # in a cycle only (none is stored): the first column
        layer.setdefault(n, 0)
    # The sources (run events, commits, people...) are the roots: all in the last column.
    last = max(layer.values(), default=0)
    for n, node in graph.nodes.items():
        if node.kind not in ("memory", "fact", "decision") and layer[n] > 0:
            layer[n] = last
    return layer


def _order(graph: ProvenanceGraph, layer: dict[str, int]) -> list[list[str]]:
    """The nodes of each column, top to bottom, ordered so that few edges cross: barycentre
    sweeps (each node at the mean position of its neighbours in the column before, then
    after), keeping the order with the fewest crossings between neighbouring columns."""
    columns: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for n in sorted(graph.nodes, key=lambda n: (graph.nodes[n].kind, _text(graph.nodes[n]), n)):
        columns[layer[n]].append(n)
    before: dict[str, list[str]] = {n: [] for n in graph.nodes}
    after: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for e in graph.edges:
        if e.source in layer and e.target in layer and layer[e.target] == layer[e.source] + 1:
            before[e.target].append(e.source)
            after[e.source].append(e.target)

    def place(cols: list[list[str]]) -> dict[str, float]:
        # A position in [0, 1], so that columns of different lengths compare.
        return {n: (i + 0.5) / len(col) for col in cols for i, n in enumerate(col)}

    def sweep(cols: list[list[str]], indices: range, near: dict[str, list[str]]) -> None:
        for c in indices:
            pos = place(cols)
            key = {
                n: sum(pos[m] for m in near[n]) / len(near[n]) if near[n] else pos[n]
                for n in cols[c]
            }
            cols[c] = sorted(cols[c], key=lambda n: key[n])  # stable: ties keep their order

    best, fewest = [list(c) for c in columns], _crossings(columns, after)
    current = [list(c) for c in columns]
    for _ in range(6):
        sweep(current, range(1, len(current)), before)
        sweep(current, range(len(current) - 2, -1, -1), after)
        found = _crossings(current, after)
        if found < fewest:
            best, fewest = [list(c) for c in current], found
    return best


def _crossings(columns: list[list[str]], after: dict[str, list[str]]) -> int:
    """Pairs of edges between neighbouring columns that cross."""
    total = 0
    for c in range(len(columns) - 1):
        here = {n: i for i, n in enumerate(columns[c])}
        there = {n: i for i, n in enumerate(columns[c + 1])}
        pairs = [(here[s], there[t]) for s in columns[c] for t in after[s] if t in there]
        for i, (a1, b1) in enumerate(pairs):
            total += sum(1 for a2, b2 in pairs[i + 1 :] if (a1 - a2) * (b1 - b2) < 0)
    return total


def _text(node: Node) -> str:
    """What a node's box says: a memory's whole content, a run event as ``RUN:SEQ kind``."""
    if node.kind == "memory" and "members" not in node.data:
        return str(node.data.get("content") or node.label)
    if node.kind == "run_event" and "members" not in node.data:
        run = str(node.data.get("run", "")).partition(":")[2].strip("`⟨⟩")
        return f"{run}:{node.data.get('seq')} {node.data.get('kind', '')}".strip()
    return node.label


def _caption(node: Node) -> str:
    hidden = bool(node.data.get("invalidated_at"))
    if node.kind == "memory" and "members" not in node.data:
        what = f"memory · {node.data.get('kind') or 'note'}"
    else:
        what = _NOUNS.get(node.kind, node.kind)
    return what + (" · hidden" if hidden else "")


def _wrap(text: str, chars: int) -> list[str]:
    """``text`` in lines of at most ``chars``, broken between words (a word longer than a line,
    an id, is split); past :data:`_MAX_LINES`, the last line ends at a word with an ellipsis."""
    lines = textwrap.wrap(" ".join(text.split()), chars) or [""]
    if len(lines) <= _MAX_LINES:
        return lines
    last = textwrap.shorten(" ".join(lines[_MAX_LINES - 1 :]), chars, placeholder=" …")
    return [*lines[: _MAX_LINES - 1], last]


def _legend(graph: ProvenanceGraph, width: int) -> tuple[list[str], int]:
    """The legend's SVG parts and its height: a swatch per node kind drawn, red for hidden,
    and a sample line per edge kind."""
    items: list[tuple[str, str, str]] = []  # (kind of sample, colour or dash, text)
    kinds = {n.kind for n in graph.nodes.values()}
    for kind in _NOUNS:
        if kind in kinds and ("box", _COLOURS[kind], _NOUNS[kind]) not in items:
            items.append(("box", _COLOURS[kind], _NOUNS[kind]))
    if any(n.data.get("invalidated_at") for n in graph.nodes.values()):
        items.append(("box", _HIDDEN, "hidden by an invalidation (recall leaves it out)"))
    for kind in ("used", "derived_from", "sourced_from", "fact_source"):
        if any(e.kind == kind for e in graph.edges):
            colour, dash, said = _EDGES[kind]
            items.append(("line", f"{colour}|{dash}", said))
    if len(graph.nodes) > _LARGE:
        items.append(("note", "", f"{len(graph.nodes)} nodes: .collapse(kind, hidden=True) "
                      "draws fewer"))  # fmt: skip
    parts: list[str] = []
    x, y = _PAD, _PAD
    for sample, style, said in items:
        step = 22 + len(said) * _CHAR_W + 18
        if x > _PAD and x + step > width - _PAD:
            x, y = _PAD, y + 18
        if sample == "note":
            parts.append(f'<text x="{x}" y="{y + 10}" fill="#666">{escape(said)}</text>')
            x += math.ceil(len(said) * _CHAR_W + 18)
            continue
        if sample == "box":
            parts.append(
                f'<rect x="{x}" y="{y}" width="14" height="11" rx="2" fill="{style}" '
                f'fill-opacity="0.15" stroke="{style}" stroke-width="1.5"/>'
            )
        else:
            colour, dash = style.split("|")
            dashed = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(
                f'<line x1="{x}" y1="{y + 6}" x2="{x + 16}" y2="{y + 6}" stroke="{colour}" '
                f'stroke-width="1.5"{dashed}/>'
            )
        parts.append(f'<text x="{x + 22}" y="{y + 10}" fill="#333">{escape(said)}</text>')
        x += math.ceil(step)
    return parts, (y + 18 + _PAD if items else _PAD)


def _svg(graph: ProvenanceGraph, *, width: int) -> str:
    layer = _layers(graph)
    columns = _order(graph, layer)
    n = max(1, len(columns))
    box_w = int(max(150, min(260, (width - 2 * _PAD - _GAP_X * (n - 1)) / n)))
    chars = max(12, int((box_w - 16) / _CHAR_W))
    total_w = max(width, 2 * _PAD + n * box_w + (n - 1) * _GAP_X)
    legend, top = _legend(graph, total_w)
    boxes: dict[str, tuple[float, float, float, list[str]]] = {}  # id -> x, y, height, lines
    heights: list[float] = []
    for col in columns:
        wrapped = {m: _wrap(_text(graph.nodes[m]), chars) for m in col}
        tall = {m: float(_CAPTION_H + _LINE_H * len(wrapped[m]) + 8) for m in col}
        heights.append(sum(tall.values()) + _GAP_Y * max(0, len(col) - 1))
        boxes.update({m: (0.0, 0.0, tall[m], wrapped[m]) for m in col})
    tallest = max(heights, default=0.0)
    for c, col in enumerate(columns):  # each column centred on the tallest
        left = float(_PAD + c * (box_w + _GAP_X))
        top_y = top + (tallest - heights[c]) / 2
        for m in col:
            box_h, box_lines = boxes[m][2], boxes[m][3]
            boxes[m] = (left, top_y, box_h, box_lines)
            top_y += box_h + _GAP_Y
    height = int(top + tallest + _PAD)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{height}" '
        f'viewBox="0 0 {total_w} {height}" font-family="{_FONT}" font-size="11">',
        f'<rect width="{total_w}" height="{height}" fill="#ffffff"/>',
        *legend,
    ]
    for e in graph.edges:  # first, so that boxes lie over any edge passing behind them
        if e.source not in boxes or e.target not in boxes:
            continue
        sx, sy, sh, _ = boxes[e.source]
        tx, ty, th, _ = boxes[e.target]
        x1, y1, x2, y2 = sx + box_w, sy + sh / 2, tx, ty + th / 2
        bend = max(20.0, (x2 - x1) / 2)
        colour, dash, _ = _EDGES.get(e.kind, ("#999", "", ""))
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<path d="M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} '
            f'{x2:.1f},{y2:.1f}" fill="none" stroke="{colour}" stroke-opacity="0.6" '
            f'stroke-width="1.2"{dashed} data-source="{escape(e.source)}" '
            f'data-target="{escape(e.target)}"/>'
        )
    for node_id, (x, y, h, lines) in boxes.items():
        node = graph.nodes[node_id]
        colour = _HIDDEN if node.data.get("invalidated_at") else _COLOURS.get(node.kind, "#555")
        full = f"{node_id}: {_text(node)}"
        parts.append(
            f'<g data-id="{escape(node_id)}" data-column="{layer[node_id]}">'
            f"<title>{escape(full)}</title>"
            # Opaque, so that an edge passing behind a box never runs through its text.
            f'<rect x="{x}" y="{y:.1f}" width="{box_w}" height="{h}" rx="4" fill="#ffffff"/>'
            f'<rect x="{x}" y="{y:.1f}" width="{box_w}" height="{h}" rx="4" fill="{colour}" '
            f'fill-opacity="0.08" stroke="{colour}" stroke-width="1.2"/>'
            f'<circle cx="{x + 9}" cy="{y + 9:.1f}" r="4" fill="{colour}"/>'
            f'<text x="{x + 17}" y="{y + 12.5:.1f}" fill="{colour}" font-size="10">'
            f"{escape(_caption(node))}</text>"
            f'<text x="{x + 8}" y="{y + _CAPTION_H + 10:.1f}" fill="#222">'
            + "".join(
                f'<tspan x="{x + 8}" dy="{0 if i == 0 else _LINE_H}">{escape(line)}</tspan>'
                for i, line in enumerate(lines)
            )
            + "</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)
