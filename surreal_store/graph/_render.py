"""A subgraph of the knowledge graph for notebooks: pandas frames, a networkx graph, an SVG.

The picture keeps the provenance pictures' conventions (boxes with a caption and their words
wrapped whole, a legend, opaque boxes over the edges, ``data-id`` / ``data-column`` on each
box and ``data-source`` / ``data-target`` on each edge), but not their layout: a knowledge
graph has cycles and no roots, so its columns are the distance from a centre (the entity a
neighbourhood was asked about, else the best-connected entity of each connected part), and
each edge says its predicate.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any, Final

from .. import _frames

__all__ = ["Drawn", "subgraph_frames", "subgraph_networkx", "subgraph_svg"]


@dataclass(frozen=True)
class Drawn:
    """What the renderings need of a subgraph, read off it once."""

    entities: Sequence[Any]
    """Entities with ``name``, ``type``, ``summary``, ``aliases``."""
    facts: Sequence[Any]
    """Facts with ``subject``, ``predicate``, ``object``, ``value`` and their times."""
    observations: dict[str, list[str]]
    """Observation contents by entity name, in the order they were added."""
    centre: str | None = None


_FACT_COLUMNS: Final = (
    "subject", "predicate", "object", "value", "valid_from", "valid_until", "recorded_at",
    "retracted_at", "invalidated_at",
)  # fmt: skip


def _fact_row(f: Any) -> dict[str, Any]:
    return {c: getattr(f, c, None) for c in _FACT_COLUMNS} | {"id": getattr(f, "id", None)}


def subgraph_frames(d: Drawn) -> tuple[Any, Any]:
    """``(entities, facts)`` as pandas DataFrames: an entity a row (its observations a list),
    a fact a row."""
    pd = _frames.pandas()
    entities = pd.DataFrame(
        [
            {
                "name": e.name,
                "type": e.type,
                "summary": e.summary,
                "aliases": list(e.aliases),
                "observations": list(d.observations.get(e.name, ())),
            }
            for e in d.entities
        ],
        columns=["name", "type", "summary", "aliases", "observations"],
    )
    facts = pd.DataFrame([_fact_row(f) for f in d.facts], columns=["id", *_FACT_COLUMNS])
    return entities, facts


def subgraph_networkx(d: Drawn) -> Any:
    """A ``networkx.MultiDiGraph``: a node an entity (by name), an edge a fact (keyed by its
    id) from subject to object."""
    nx = _frames.networkx()
    g = nx.MultiDiGraph()
    for e in d.entities:
        g.add_node(
            e.name,
            type=e.type,
            summary=e.summary,
            aliases=list(e.aliases),
            observations=list(d.observations.get(e.name, ())),
        )
    for f in d.facts:
        row = _fact_row(f)
        key = row.pop("id")
        g.add_edge(f.subject, f.object, key=key or f.predicate, **row)
    return g


# -- the picture ---------------------------------------------------------------------------

_PALETTE: Final = (
    "#1f78b4", "#33a02c", "#6a3d9a", "#b15928", "#ff7f00", "#e7298a", "#1b9e77", "#666666",
)  # fmt: skip
_EDGE: Final = "#7a8a99"
_FONT: Final = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"
_CHAR_W: Final = 6.3  # px per character at 11px (DejaVu Sans, the widest of the family list)
_LINE_H: Final = 13
_CAPTION_H: Final = 14
_MAX_LINES: Final = 4
_GAP_X: Final = 96  # between columns: room for the edges and their predicates
_GAP_Y: Final = 10
_PAD: Final = 12


def _wrap(text: str, chars: int) -> list[str]:
    lines = textwrap.wrap(" ".join(text.split()), chars) or [""]
    if len(lines) <= _MAX_LINES:
        return lines
    last = textwrap.shorten(" ".join(lines[_MAX_LINES - 1 :]), chars, placeholder=" …")
    return [*lines[: _MAX_LINES - 1], last]


def _columns(d: Drawn) -> dict[str, int]:
    """Each entity's column: its distance (facts taken either way) from the centre of its
    connected part: the subgraph's centre, else the part's best-connected entity."""
    names = [e.name for e in d.entities]
    near: dict[str, list[str]] = {n: [] for n in names}
    for f in d.facts:
        if f.subject in near and f.object in near and f.subject != f.object:
            near[f.subject].append(f.object)
            near[f.object].append(f.subject)
    column: dict[str, int] = {}
    starts = [d.centre] if d.centre in near else []
    starts += sorted(names, key=lambda n: (-len(near[n]), n))
    for start in starts:
        if start in column:
            continue
        column[start] = 0
        frontier = [start]
        while frontier:
            nxt = []
            for n in frontier:
                for m in sorted(near[n]):
                    if m not in column:
                        column[m] = column[n] + 1
                        nxt.append(m)
            frontier = nxt
    return column


def _order(d: Drawn, column: dict[str, int]) -> list[list[str]]:
    """The entities of each column, top to bottom: barycentre sweeps over the facts between
    neighbouring columns, so that few edges cross."""
    cols: list[list[str]] = [[] for _ in range(max(column.values(), default=-1) + 1)]
    for n in sorted(column, key=lambda n: (column[n], n)):
        cols[column[n]].append(n)
    before: dict[str, list[str]] = {n: [] for n in column}
    after: dict[str, list[str]] = {n: [] for n in column}
    for f in d.facts:
        a, b = f.subject, f.object
        if a in column and b in column and abs(column[a] - column[b]) == 1:
            lo, hi = (a, b) if column[a] < column[b] else (b, a)
            after[lo].append(hi)
            before[hi].append(lo)
    for _ in range(4):
        for c in [*range(1, len(cols)), *range(len(cols) - 2, -1, -1)]:
            pos = {n: (i + 0.5) / len(col) for col in cols for i, n in enumerate(col)}
            near = before if c > 0 else after
            key = {
                n: sum(pos[m] for m in near[n] or after[n]) / len(near[n] or after[n])
                if (near[n] or after[n])
                else pos[n]
                for n in cols[c]
            }
            cols[c] = sorted(cols[c], key=lambda n: key[n])
    return cols


def _value(v: Any) -> str:
    return "" if v is None else f" = {v}"


def _legend(types: Iterable[str], colour: dict[str, str], width: int) -> tuple[list[str], int]:
    items = [(colour[t], t or "(no type)") for t in types]
    items.append(("line", "fact: subject → object, labelled with its predicate"))
    parts: list[str] = []
    x, y = _PAD, _PAD
    for style, said in items:
        step = 22 + len(said) * _CHAR_W + 18
        if x > _PAD and x + step > width - _PAD:
            x, y = _PAD, y + 18
        if style == "line":
            parts.append(
                f'<line x1="{x}" y1="{y + 6}" x2="{x + 16}" y2="{y + 6}" stroke="{_EDGE}" '
                'stroke-width="1.5" marker-end="url(#arrow)"/>'
            )
        else:
            parts.append(
                f'<rect x="{x}" y="{y}" width="14" height="11" rx="2" fill="{style}" '
                f'fill-opacity="0.15" stroke="{style}" stroke-width="1.5"/>'
            )
        parts.append(f'<text x="{x + 22}" y="{y + 10}" fill="#333">{escape(said)}</text>')
        x += math.ceil(step)
    return parts, y + 18 + _PAD


def subgraph_svg(d: Drawn, *, width: int = 900) -> str:
    """The subgraph drawn in columns by distance from its centre (left), each entity a box
    with its type, name and summary, each fact an arrow from subject to object labelled with
    its predicate (and value), and a legend of the types' colours."""
    column = _columns(d)
    cols = _order(d, column)
    by_name = {e.name: e for e in d.entities}
    types = sorted({e.type for e in d.entities})
    colour = {t: _PALETTE[i % len(_PALETTE)] for i, t in enumerate(types)}
    n = max(1, len(cols))
    box_w = int(max(150, min(240, (width - 2 * _PAD - _GAP_X * (n - 1)) / n)))
    chars = max(12, int((box_w - 16) / _CHAR_W))
    total_w = max(width, 2 * _PAD + n * box_w + (n - 1) * _GAP_X)
    legend, top = _legend(types, colour, total_w)
    boxes: dict[str, tuple[float, float, float, list[str]]] = {}
    heights: list[float] = []
    for col in cols:
        tall: dict[str, float] = {}
        for m in col:
            e = by_name[m]
            lines = _wrap(f"{e.name}: {e.summary}" if e.summary else e.name, chars)
            tall[m] = float(_CAPTION_H + _LINE_H * len(lines) + 8)
            boxes[m] = (0.0, 0.0, tall[m], lines)
        heights.append(sum(tall.values()) + _GAP_Y * max(0, len(col) - 1))
    tallest = max(heights, default=0.0)
    for c, col in enumerate(cols):
        left = float(_PAD + c * (box_w + _GAP_X))
        y = top + (tallest - heights[c]) / 2
        for m in col:
            boxes[m] = (left, y, boxes[m][2], boxes[m][3])
            y += boxes[m][2] + _GAP_Y
    height = int(top + tallest + _PAD)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{height}" '
        f'viewBox="0 0 {total_w} {height}" font-family="{_FONT}" font-size="11">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><polygon points="0,0 10,5 0,10" '
        f'fill="{_EDGE}"/></marker></defs>',
        f'<rect width="{total_w}" height="{height}" fill="#ffffff"/>',
        *legend,
    ]
    labels: list[str] = []
    for f in d.facts:
        if f.subject not in boxes or f.object not in boxes:
            continue
        sx, sy, sh, _ = boxes[f.subject]
        tx, ty, th, _ = boxes[f.object]
        y1, y2 = sy + sh / 2, ty + th / 2
        if sx < tx:  # left to right
            x1, x2 = sx + box_w, tx
        elif sx > tx:
            x1, x2 = sx, tx + box_w
        else:  # the same column: a loop out to the right
            x1 = x2 = sx + box_w
        bend = max(30.0, abs(x2 - x1) / 2)
        c1 = x1 + bend if x1 <= x2 or sx == tx else x1 - bend
        c2 = x2 - bend if x1 < x2 else x2 + bend
        parts.append(
            f'<path d="M{x1:.1f},{y1:.1f} C{c1:.1f},{y1:.1f} {c2:.1f},{y2:.1f} {x2:.1f},'
            f'{y2:.1f}" fill="none" stroke="{_EDGE}" stroke-opacity="0.7" stroke-width="1.2" '
            f'marker-end="url(#arrow)" data-source="{escape(f.subject)}" '
            f'data-target="{escape(f.object)}"/>'
        )
        said = f"{f.predicate}{_value(f.value)}"
        mx = (x1 + c1 + c2 + x2) / 4
        my = (y1 + y2) / 2
        labels.append(
            f'<text x="{mx:.1f}" y="{my - 3:.1f}" text-anchor="middle" fill="#555" '
            f'font-size="10" paint-order="stroke" stroke="#ffffff" stroke-width="3">'
            f"{escape(said)}</text>"
        )
    for name, (x, y, h, lines) in boxes.items():
        e = by_name[name]
        hue = colour[e.type]
        seen = len(d.observations.get(name, ()))
        caption = (e.type or "entity") + (
            f" · {seen} observation{'s' * (seen != 1)}" if seen else ""
        )
        full = f"{name}: {e.summary}" if e.summary else name
        parts.append(
            f'<g data-id="{escape(name)}" data-column="{column[name]}">'
            f"<title>{escape(full)}</title>"
            f'<rect x="{x}" y="{y:.1f}" width="{box_w}" height="{h}" rx="4" fill="#ffffff"/>'
            f'<rect x="{x}" y="{y:.1f}" width="{box_w}" height="{h}" rx="4" fill="{hue}" '
            f'fill-opacity="0.08" stroke="{hue}" stroke-width="1.2"/>'
            f'<circle cx="{x + 9}" cy="{y + 9:.1f}" r="4" fill="{hue}"/>'
            f'<text x="{x + 17}" y="{y + 12.5:.1f}" fill="{hue}" font-size="10">'
            f"{escape(caption)}</text>"
            f'<text x="{x + 8}" y="{y + _CAPTION_H + 10:.1f}" fill="#222">'
            + "".join(
                f'<tspan x="{x + 8}" dy="{0 if i == 0 else _LINE_H}">{escape(line)}</tspan>'
                for i, line in enumerate(lines)
            )
            + "</text></g>"
        )
    parts.extend(labels)  # over the boxes' backgrounds, each on a white halo
    parts.append("</svg>")
    return "".join(parts)
