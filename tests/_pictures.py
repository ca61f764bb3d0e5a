"""What makes a provenance picture readable, checked on its SVG, and the picture rendered to a
PNG (resvg) so that a person can look at it: set PROVENANCE_PICTURES to a folder to keep
them there."""

from __future__ import annotations

import os
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

SVG = "{http://www.w3.org/2000/svg}"
CHAR_W = 6.3  # the renderer's own estimate of a character's width at 11px


@dataclass
class Box:
    id: str
    column: int
    x: float
    y: float
    w: float
    h: float
    title: str
    lines: list[str]


def boxes(svg: str) -> list[Box]:
    found = []
    for g in ET.fromstring(svg).iter(f"{SVG}g"):
        rect = g.findall(f"{SVG}rect")[-1]
        texts = g.findall(f"{SVG}text")
        title = g.find(f"{SVG}title")
        found.append(
            Box(
                id=g.get("data-id", ""),
                column=int(g.get("data-column", "0")),
                x=float(rect.get("x", 0)),
                y=float(rect.get("y", 0)),
                w=float(rect.get("width", 0)),
                h=float(rect.get("height", 0)),
                title=(title.text or "") if title is not None else "",
                lines=[t.text or "" for t in texts[-1].findall(f"{SVG}tspan")],
            )
        )
    return found


def edges(svg: str) -> list[tuple[str, str]]:
    return [
        (p.get("data-source", ""), p.get("data-target", ""))
        for p in ET.fromstring(svg).iter(f"{SVG}path")
    ]


def crossings(svg: str) -> int:
    """Pairs of edges between neighbouring columns that cross, in the picture as drawn."""
    at = {b.id: b for b in boxes(svg)}
    pairs = [(s, t) for s, t in edges(svg) if at[t].column == at[s].column + 1]
    total = 0
    for i, (a, b) in enumerate(pairs):
        for c, d in pairs[i + 1 :]:
            if at[a].column == at[c].column and (at[a].y - at[c].y) * (at[b].y - at[d].y) < 0:
                total += 1
    return total


def check_readable(svg: str) -> None:
    """A legend; boxes that do not overlap; each box's lines fit its width and are the node's
    own words, whole (a line may end with an ellipsis after a whole word)."""
    root = ET.fromstring(svg)
    legend = [t.text for t in root.findall(f"{SVG}text")]  # top-level texts: the legend
    assert legend, "no legend"
    drawn = boxes(svg)
    for b in drawn:
        words = set(b.title.partition(": ")[2].split()) | set(b.title.split())
        for line in b.lines:
            assert len(line) * CHAR_W <= b.w - 12, (b.id, line)
            for word in line.removesuffix(" …").split():
                assert word in words or word == "…", (b.id, word, b.title)
    for i, a in enumerate(drawn):
        for b in drawn[i + 1 :]:
            apart = a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y
            assert apart, (a.id, b.id)


def render_png(svg: str, name: str, folder: Path) -> Path:
    """The picture as a PNG (what a person sees), kept in PROVENANCE_PICTURES if set."""
    resvg = pytest.importorskip("resvg_py")
    data = bytes(resvg.svg_to_bytes(svg_string=svg))
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    root = ET.fromstring(svg)
    assert (width, height) == (int(root.get("width", 0)), int(root.get("height", 0)))
    keep = os.environ.get("PROVENANCE_PICTURES")
    path = (Path(keep) if keep else folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
