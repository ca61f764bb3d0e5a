"""Memory and provenance: recall, reindex, lineage, impact, why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from .. import memory
from .._client import Store
from .._doors import MAX_K
from .._errors import NotFoundError
from ._app import app, embedder_for, resolve_id, store_options, with_store
from ._lazy import provenance, runs
from ._render import dump, out, plural, print_graph, print_json, print_rows, with_progress


@app.command("recall")
@store_options
def recall_(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="What to recall.")],
    k: Annotated[int, typer.Option("--k", min=1, max=MAX_K)] = 10,
    kind: Annotated[list[str] | None, typer.Option("--kind", help="Only these kinds.")] = None,
    scope: Annotated[str | None, typer.Option()] = None,
    branch: Annotated[str | None, typer.Option(help="Memories of this branch's history.")] = None,
    include_invalidated: Annotated[bool, typer.Option("--include-invalidated")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recall memories: hybrid when the store's embedding model is available here, else full
    text."""

    async def go(s: Store) -> list[memory.RecallHit]:
        embedder = embedder_for(await memory.get_space(s))
        return await memory.recall(
            s, text=text, embedder=embedder, k=k, kind=kind or None, scope=scope,
            branch=branch, include_invalidated=include_invalidated,
        )  # fmt: skip

    hits = with_store(ctx.obj, go)
    if as_json:
        print_json(dump(hits))
        return
    rows = [
        [
            str(i), f"{h.score:.4f}",
            "" if h.vector_score is None else f"{h.vector_score:.3f} (#{h.vector_rank})",
            "" if h.text_score is None else f"{h.text_score:.2f} (#{h.text_rank})",
            h.memory.kind, h.memory.id[:12], h.memory.content,
        ]
        for i, h in enumerate(hits, 1)
    ]  # fmt: skip
    print_rows(["#", "score", "vector", "text", "kind", "memory", "content"], rows,
               text="content", empty=f"no memories match {text!r}")  # fmt: skip


@app.command()
@store_options
def lineage(
    ctx: typer.Context,
    memory_id: Annotated[
        str, typer.Argument(metavar="MEMORY", help="Memory id, or a unique prefix of 6+ hex.")
    ],
    max_depth: Annotated[int | None, typer.Option(min=0)] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Where a memory came from: its derivations and root sources, as a tree."""

    async def go(s: Store) -> tuple[str, provenance.ProvenanceGraph]:
        mid = await resolve_id(s, memory_id, "memory")
        return mid, await provenance.lineage(s, memory=mid, max_depth=max_depth)

    mid, graph = with_store(ctx.obj, go)
    if as_json:
        print_json(graph.to_dict())
        return
    print_graph(graph, f"memory:{mid}")


@app.command()
@store_options
def impact(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE", help="A memory id, RUN:SEQ for a run event, or commit:ID."
        ),
    ],
    limit: Annotated[
        int, typer.Option(min=1, help="Memories and decisions listed (of each; --json: all).")
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Everything that depends on a source or a memory: the memories derived from it and the
    decisions that used any of them."""

    async def go(s: Store) -> tuple[provenance.Impact, list[memory.Memory], list[Any]]:
        target = await _source_arg(s, source)
        if isinstance(target, str):
            found = await provenance.impact(s, memory=target)
        else:
            found = await provenance.impact(s, source=target)
        if as_json:
            return found, [], []
        mems = [await memory.get(s, memory=m) for m in found.memories[:limit]]
        decided = [await provenance.get_decision(s, decision=d) for d in found.decisions[:limit]]
        return found, mems, decided

    found, mems, decided = with_store(ctx.obj, go)
    if as_json:
        print_json(dump(found))
        return
    out.print(
        f"{plural(len(found.memories), 'memory', 'memories')} and "
        f"{plural(len(found.decisions), 'decision')} depend on {source}",
        highlight=False,
    )
    if mems:
        out.rule("memories")
        rows = [[m.id[:12], m.kind + (" (hidden)" if m.invalidated else ""), m.content]
                for m in mems]  # fmt: skip
        print_rows(["memory", "kind", "content"], rows, text="content")
        _more(len(found.memories), limit, "memories")
    if decided:
        out.rule("decisions")
        rows = [[d.id[:12], d.task, f"{d.confidence:.2f}", d.action] for d in decided]
        print_rows(["decision", "task", "confidence", "action"], rows, text="action")
        _more(len(found.decisions), limit, "decisions")


def _more(total: int, shown: int, what: str) -> None:
    if total > shown:
        out.print(f"({shown} of {total} {what} shown: --limit {total}, or --json for all)")


async def _source_arg(store: Store, value: str) -> str | provenance.SourceRef:
    """``commit:ID`` (a snapshot), ``RUN:SEQ`` (a run event) or a memory id (the key, or
    ``memory:`` and the key; prefixes of 6+ hex are resolved)."""
    if value.startswith("commit:"):
        return provenance.StateSnapshot(commit=await resolve_id(store, value, "commit"))
    run, sep, seq = value.rpartition(":")
    if sep and seq.isdigit() and run and run != "memory":
        await runs.get_run(store, run_id=run)  # NotFoundError for an unknown run
        trace = provenance.RunTrace(run_id=run, seq=int(seq))
        if not await runs.events(store, run_id=run, from_seq=trace.seq, limit=1):
            raise NotFoundError(f"run {run} has no event {trace.seq}")
        return trace
    return await resolve_id(store, value, "memory")


@app.command()
@store_options
def why(
    ctx: typer.Context,
    decision: Annotated[
        str, typer.Argument(metavar="DECISION", help="Decision id, or a unique prefix of 6+ hex.")
    ],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Why a decision was taken: the memories it used, their lineage and root sources."""

    async def go(s: Store) -> tuple[str, provenance.ProvenanceGraph]:
        did = await resolve_id(s, decision, "decision")
        return did, await provenance.why(s, decision=did)

    did, graph = with_store(ctx.obj, go)
    if as_json:
        print_json(graph.to_dict())
        return
    print_graph(graph, f"decision:{did}")


@app.command("reindex")
@store_options
def reindex(
    ctx: typer.Context, quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False
) -> None:
    """Rebuild the recall index from the memory table, under a progress bar (never needed for
    correctness: it follows the table's change feed; for a damaged index file)."""

    async def go(s: Store) -> memory.IndexStatus:
        async def work(bar: Callable[[str, int], None] | None) -> memory.IndexStatus:
            seen = 0

            def progress(done: int) -> None:
                nonlocal seen
                if bar is not None:
                    bar("memories read", done - seen)
                seen = done

            return await memory.rebuild_index(s, progress=progress)

        return await with_progress(quiet, "rebuilding the recall index", work)

    status = with_store(ctx.obj, go)
    if not quiet:
        out.print(
            f"rebuilt the recall index: {plural(status.memories, 'memory', 'memories')}, "
            f"{plural(status.vectors, 'vector')}, in {status.build_s:.1f}s",
            highlight=False,
        )
        if status.path:
            out.print("saved in:", highlight=False)
            out.print(f"  {status.path}", soft_wrap=True, highlight=False)  # whole, to copy
