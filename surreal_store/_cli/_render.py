"""How the command line prints: consoles, tables, JSON, graphs as trees, progress."""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast

from pydantic import BaseModel
from rich.console import Console
from rich.padding import Padding
from rich.progress import Progress
from rich.table import Column, Table
from rich.text import Text
from rich.tree import Tree

from .._types import RecordId

if TYPE_CHECKING:
    from .. import provenance

__all__ = [
    "dump",
    "err",
    "escape_markup",
    "out",
    "plural",
    "print_graph",
    "print_json",
    "print_rows",
    "with_progress",
]

T = TypeVar("T")


class _Stdout(io.TextIOBase):
    """Standard output (whichever it is at the time: tests swap it) as the console writes to
    it, less the spaces rich leaves at the ends of wrapped and padded lines."""

    _LINE_END = re.compile(r"[ \t]+((?:\x1b\[[0-9;]*m)*)$", re.M)

    def write(self, text: str) -> int:
        sys.stdout.write(self._LINE_END.sub(r"\1", text))
        return len(text)

    def flush(self) -> None:
        sys.stdout.flush()

    def isatty(self) -> bool:
        return sys.stdout.isatty()

    def fileno(self) -> int:
        return sys.stdout.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(sys.stdout, "encoding", None) or "utf-8"


out = Console(file=cast(IO[str], _Stdout()))
err = Console(stderr=True, soft_wrap=True)  # an error is one line, whatever the width


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 memory``, ``2 memories``: a count with its noun."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


_TEXT_MIN = 32


def print_rows(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, text: str, empty: str = ""
) -> None:
    """A table whose ``text`` column wraps by words, never squeezed below ``_TEXT_MIN``; with
    no rows, the line ``empty`` (an empty answer is an answer)."""
    if not rows:
        if empty:
            out.print(empty, highlight=False, markup=False)
        return
    at = list(headers).index(text)
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers) if i != at]
    # Borders and padding: 3 per column and 1.
    if sum(widths) + 3 * len(headers) + 1 + _TEXT_MIN <= out.width:
        table = Table(*(Column(h, no_wrap=i != at, ratio=1 if i == at else None,
                               min_width=_TEXT_MIN if i == at else None)
                        for i, h in enumerate(headers)))  # fmt: skip
        for r in rows:
            table.add_row(*r)
        out.print(table)
        return
    # Too narrow for a table: one entry per paragraph, each value with its column's name.
    for r in rows:
        cells = enumerate(zip(headers, r, strict=True))
        parts = [_labelled(h, cell) for i, (h, cell) in cells if i != at and cell]
        for line in _pack(parts, out.width):  # a value stays beside its name
            out.print(Text(line, style="bold"))
        out.print(Padding(Text(r[at]), (0, 0, 0, 4), expand=False))


def _pack(parts: Sequence[str], width: int) -> list[str]:
    """``parts`` joined by two spaces into lines of at most ``width``, breaking only between
    parts."""
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + 2 + len(part) <= width:
            lines[-1] += "  " + part
        else:
            lines.append(part)
    return lines


def _labelled(header: str, cell: str) -> str:
    if header == "#":
        return f"{cell}."
    return f"{header} {cell}" if header else cell


def dump(items: Any) -> Any:
    if isinstance(items, list):
        return [dump(i) for i in items]
    if isinstance(items, BaseModel):
        return items.model_dump(mode="json")
    return items


def _ref(node: provenance.Node) -> str:
    """A node's id in the form the commands take: a key prefix, ``commit:`` and a prefix,
    ``RUN:SEQ`` for a run event."""
    table, _, key = node.id.partition(":")
    if table == "run_event":
        run = node.data.get("run")
        name = str(run.key) if isinstance(run, RecordId) else str(run).partition(":")[2]
        return f"{name.strip('`⟨⟩')}:{node.data.get('seq')}"
    if table in ("memory", "decision"):
        return key[:12]
    if table in ("commit", "snapshot"):
        return f"commit:{key[:12]}"
    return node.id


def _label(node: provenance.Node) -> str:
    mark = "[red]INVALIDATED[/] " if node.data.get("invalidated_at") else ""
    if node.kind == "memory":
        text = str(node.data.get("content") or node.label)
    elif node.kind == "run_event":
        text = str(node.data.get("kind", ""))
    elif node.kind in ("commit", "snapshot"):
        text = node.label.partition(": ")[2] if node.kind == "commit" else "state"
    else:
        text = node.label
    kind = node.kind.replace("_", " ")
    return f"{mark}[bold]{kind}[/] {escape_markup(_ref(node))}: {escape_markup(text)}"


def escape_markup(text: str) -> str:
    return text.replace("[", r"\[")


def _grow(
    tree: Tree,
    graph: provenance.ProvenanceGraph,
    node_id: str,
    seen: set[str],
    depth: int | None = None,
) -> None:
    """Upstream from ``node_id``: what it was derived from and what it cites."""
    if depth is not None and depth <= 0:
        return
    below = None if depth is None else depth - 1
    for e in graph.edges:
        if e.source != node_id or e.kind == "used":
            continue
        target = graph.nodes.get(e.target)
        if target is None:
            continue
        how = f"[dim]{e.data.get('how') or 'source'}[/] "
        if e.target in seen:
            tree.add(how + _label(target) + " [dim](shown above)[/]")
            continue
        seen.add(e.target)
        _grow(tree.add(how + _label(target)), graph, e.target, seen, below)


def print_graph(graph: provenance.ProvenanceGraph, root: str, depth: int | None = None) -> None:
    tree = Tree(_label(graph.nodes[root]))
    seen = {root}
    if graph.nodes[root].kind == "decision":
        for e in sorted((e for e in graph.edges if e.kind == "used"), key=lambda e: e.data["rank"]):
            score = e.data.get("score")
            used = f"[dim]used #{e.data['rank']}" + (f" {score:.3f}" if score else "") + "[/] "
            seen.add(e.target)
            _grow(tree.add(used + _label(graph.nodes[e.target])), graph, e.target, seen, depth)
    else:
        _grow(tree, graph, root, seen, depth)
    out.print(tree)
    roots = [_ref(graph.nodes[r]) if r in graph.nodes else r for r in graph.roots]
    out.print(f"roots: {', '.join(roots) or '(none)'}", highlight=False)


async def with_progress(
    quiet: bool, label: str, work: Callable[[Callable[[str, int], None] | None], Awaitable[T]]
) -> T:
    """Run ``work(progress)`` under a progress bar (none with ``quiet``); ``progress(step, n)``
    advances it by ``n`` and names the current step."""
    if quiet:
        return await work(None)
    # Started by the first step, so an error before any (a refused bundle) leaves no trace.
    bar = Progress(console=err, transient=True)
    task = bar.add_task(label, total=None)

    def advance(step: str, n: int) -> None:
        if not bar.live.is_started:
            bar.start()
        bar.update(task, advance=n, description=f"{label}: {step}")

    try:
        return await work(advance)
    finally:
        if bar.live.is_started:
            bar.stop()
