"""The ``surreal-store`` command line.

Every command opens the store from settings (``--url`` etc. beat ``SURREAL_STORE_*``), prints a
rich table or, with ``--json``, one JSON document, and exits non-zero with one line on error.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import anyio
import typer
from pydantic import BaseModel
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from rich.tree import Tree

from . import branches, bundles, commits, memory, provenance, releases, runs
from ._client import Store
from ._config import Settings
from ._errors import StoreError
from ._migrate import DriftReport, Migrator, SchemaStatus, describe
from ._version import __version__

__all__ = ["app", "main"]

T = TypeVar("T")

app = typer.Typer(
    name="surreal-store",
    help="A provenance-first knowledge store for AI agents, on SurrealDB.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@dataclass
class _Options:
    url: str | None = None
    namespace: str | None = None
    database: str | None = None
    username: str | None = None
    password: str | None = None
    schema_dir: Path | None = None

    def settings(self) -> Settings:
        return Settings.load(
            url=self.url,
            namespace=self.namespace,
            database=self.database,
            username=self.username,
            password=self.password,
        )

    def store(self, *, migrate: bool = False, check: bool = False) -> Store:
        return Store(
            settings=self.settings(),
            migrate=migrate,
            check_schema=check,
            schema_dir=self.schema_dir,
        )


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    raise typer.Exit(code)


def _run(fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn`` on asyncio (the SDK needs it); errors become one line and exit code 1."""
    try:
        return anyio.run(fn, backend="asyncio")
    except StoreError as exc:
        _fail(" ".join(str(exc).split()))
    except KeyboardInterrupt:
        _fail("interrupted", 130)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


@app.callback()
def _global(
    ctx: typer.Context,
    url: Annotated[
        str | None, typer.Option(help="Store URL: mem://, surrealkv://PATH, ws://HOST:PORT.")
    ] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", "--ns")] = None,
    database: Annotated[str | None, typer.Option("--database", "--db")] = None,
    username: Annotated[str | None, typer.Option(help="Root user for a server.")] = None,
    password: Annotated[
        str | None,
        typer.Option(help="Prefer SURREAL_STORE_PASSWORD: options show in process lists."),
    ] = None,
    schema_dir: Annotated[
        Path | None, typer.Option(help="Schema files to use instead of the packaged ones.")
    ] = None,
) -> None:
    ctx.obj = _Options(url, namespace, database, username, password, schema_dir)


@app.command()
def version() -> None:
    """Print the versions of surreal-store and its engine."""
    import importlib.metadata

    out.print(f"surreal-store {__version__}")
    out.print(f"surrealdb SDK {importlib.metadata.version('surrealdb')}")


@app.command()
def migrate(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan only.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Apply pending schema files (each in one transaction), or show the plan."""
    opts: _Options = ctx.obj

    async def go() -> tuple[list[Any], list[Any], bool]:
        async with opts.store() as store:
            result = await Migrator(store, schema_dir=opts.schema_dir).migrate(dry_run=dry_run)
            return result.applied, result.plan, result.dry_run

    applied, plan, was_dry = _run(go)
    if as_json:
        _print_json(
            {"dry_run": was_dry, "applied": [f.label for f in applied], "plan": describe(plan)}
        )
        return
    if was_dry:
        if not plan:
            out.print("Nothing to apply: the schema is up to date.")
        for entry in describe(plan):
            out.print(f"[bold]{entry['file']}[/] ({len(entry['statements'])} statements)")
            for statement in entry["statements"]:
                out.print(f"  {' '.join(statement.split())};", highlight=False)
        return
    if not applied:
        out.print("Nothing to apply: the schema is up to date.")
    for f in applied:
        out.print(f"applied [bold]{f.label}[/]")


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    drift: Annotated[bool, typer.Option(help="Compare live definitions too.")] = True,
) -> None:
    """Show the code's and the database's schema versions, applied and pending files, drift."""
    opts: _Options = ctx.obj

    async def go() -> tuple[SchemaStatus, DriftReport | None]:
        async with opts.store() as store:
            migrator = Migrator(store, schema_dir=opts.schema_dir)
            st = await migrator.status()
            report = await migrator.drift() if drift else None
            return st, report

    st, report = _run(go)
    if as_json:
        data = st.to_dict()
        data["drift"] = report.to_dict() if report else None
        _print_json(data)
        return
    _print_status(st, report)


@app.command()
def verify(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check checksums, pending files and drift; exit 1 if anything is wrong."""
    opts: _Options = ctx.obj

    async def go() -> tuple[SchemaStatus, DriftReport]:
        async with opts.store() as store:
            migrator = Migrator(store, schema_dir=opts.schema_dir)
            return await migrator.status(), await migrator.drift()

    st, report = _run(go)
    problems = [
        *(f"{f.label} changed since it was applied (rebless to accept)" for f, _ in st.mismatched),
        *(f"{f.label} is pending" for f in st.pending),
        *(f"version {m.version:03d} ({m.name}) is unknown to this code" for m in st.unknown),
        *(f"drift: {item}" for item in report.items),
    ]
    if as_json:
        _print_json({"ok": not problems, "problems": problems, "drift": report.to_dict()})
    else:
        for p in problems:
            err.print(f"[red]✗[/] {p}", highlight=False)
        if report.note:
            err.print(f"note: {report.note}")
        if not problems:
            out.print("[green]✓[/] schema verified: checksums match, nothing pending, no drift")
    if problems:
        raise typer.Exit(1)


@app.command()
def rebless(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="Schema file: path, name or version number.")],
) -> None:
    """Accept the edited text of an applied schema file: re-apply it, record its checksum."""
    opts: _Options = ctx.obj

    async def go() -> str | None:
        async with opts.store() as store:
            f = await Migrator(store, schema_dir=opts.schema_dir).rebless(file)
            return f.label if f else None

    label = _run(go)
    if label is None:
        out.print(f"{file}: checksum already matches; nothing to do")
    else:
        out.print(f"reblessed [bold]{label}[/]")


# -- reading the domains ---------------------------------------------------------------------


def _query(opts: _Options, fn: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store as the library does (pending schema files applied), run ``fn``, close."""

    async def go() -> T:
        async with opts.store(migrate=True, check=True) as store:
            return await fn(store)

    return _run(go)


def _dump(items: Any) -> Any:
    if isinstance(items, list):
        return [_dump(i) for i in items]
    if isinstance(items, BaseModel):
        return items.model_dump(mode="json")
    return items


@app.command("log")
def log_(
    ctx: typer.Context,
    branch: Annotated[str, typer.Option(help="Branch whose history to show.")] = "main",
    commit: Annotated[str | None, typer.Option(help="Start at this commit instead.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
    first_parent: Annotated[bool, typer.Option("--first-parent")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Commit history, newest first (children before their parents)."""
    opts: _Options = ctx.obj
    history = _query(
        opts,
        lambda s: commits.log(
            s, commit=commit, branch=None if commit else branch, limit=limit,
            first_parent=first_parent,
        ),
    )  # fmt: skip
    if as_json:
        _print_json(_dump(history))
        return
    table = Table("commit", "gen", "when", "author", "branch", "message")
    for c in history:
        merge = " (merge)" if len(c.parents) > 1 else ""
        table.add_row(c.id[:12], str(c.generation), f"{c.created_at:%Y-%m-%d %H:%M:%S}",
                      c.author, c.branch or "", c.message + merge)  # fmt: skip
    out.print(table)


@app.command()
def show(
    ctx: typer.Context,
    commit: Annotated[str, typer.Argument(help="Commit id (64 hex).")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One commit and its state."""
    opts: _Options = ctx.obj

    async def fetch(s: Store) -> tuple[commits.Commit, dict[str, Any]]:
        return await commits.get(s, commit=commit), await commits.get_state(s, commit=commit)

    found, state = _query(opts, fetch)
    if as_json:
        _print_json({"commit": _dump(found), "state": state})
        return
    out.print(f"[bold]commit {found.id}[/]")
    out.print(f"parents:  {', '.join(found.parents) or '(root)'}")
    out.print(f"author:   {found.author}   branch: {found.branch}   generation: {found.generation}")
    out.print(f"date:     {found.created_at:%Y-%m-%d %H:%M:%S %Z}")
    out.print(f"\n    {found.message}\n")
    out.print_json(data=state)


@app.command("branches")
def branches_(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Branches and their heads."""
    found = _query(ctx.obj, branches.list_all)
    if as_json:
        _print_json(_dump(found))
        return
    table = Table("", "branch", "head", "updated")
    for b in found:
        table.add_row("*" if b.is_default else "", b.name, b.head[:12],
                      f"{b.updated_at:%Y-%m-%d %H:%M:%S}")  # fmt: skip
    out.print(table)


@app.command("runs")
def runs_(
    ctx: typer.Context,
    agent: Annotated[str | None, typer.Option(help="Only this agent's runs.")] = None,
    status: Annotated[
        str | None, typer.Option(help="RUNNING, COMPLETED, FAILED, CANCELLED.")
    ] = None,
    spec: Annotated[str | None, typer.Option(help="Only runs of this spec digest.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Runs of the execution ledger, newest first."""
    if status is not None and status.upper() not in ("RUNNING", "COMPLETED", "FAILED", "CANCELLED"):
        _fail(f"unknown status {status!r}: RUNNING, COMPLETED, FAILED or CANCELLED")
    found = _query(
        ctx.obj,
        lambda s: runs.list_runs(
            s, agent_name=agent, spec_digest=spec, limit=limit,
            status=status.upper() if status else None,  # type: ignore[arg-type]
        ),
    )  # fmt: skip
    if as_json:
        _print_json(_dump(found))
        return
    table = Table("run", "agent", "status", "events", "created", "spec")
    for r in found:
        events = str(r.summary.total_events) if r.summary else ""
        table.add_row(r.id, r.agent_name, r.status, events,
                      f"{r.created_at:%Y-%m-%d %H:%M:%S}", r.spec_digest[:12])  # fmt: skip
    out.print(table)


@app.command("events")
def events_(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="Run id.")],
    from_seq: Annotated[int, typer.Option("--from", min=1, help="First seq to show.")] = 1,
    limit: Annotated[int | None, typer.Option(min=1)] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A run's events in order (a replay from --from)."""
    found = _query(ctx.obj, lambda s: runs.events(s, run_id=run, from_seq=from_seq, limit=limit))
    if as_json:
        _print_json(_dump(found))
        return
    table = Table("seq", "kind", "time", "payload")
    for e in found:
        table.add_row(str(e.seq), e.kind, f"{e.timestamp:%H:%M:%S.%f}",
                      json.dumps(e.payload, ensure_ascii=False)[:80])  # fmt: skip
    out.print(table)


@app.command("releases")
def releases_(
    ctx: typer.Context,
    agent: Annotated[str, typer.Argument(help="Agent name.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """An agent's release history, newest first; the first row is current."""
    found = _query(ctx.obj, lambda s: releases.history(s, agent_name=agent))
    if not found:
        _fail(f"no releases for agent {agent!r}")
    if as_json:
        _print_json(_dump(found))
        return
    table = Table("seq", "version", "action", "spec", "by", "when")
    for r in found:
        action = f"rollback to #{r.restores}" if r.action == "rollback" else "promote"
        table.add_row(str(r.seq), r.version_label, action, r.spec_digest[:12], r.promoted_by,
                      f"{r.created_at:%Y-%m-%d %H:%M:%S}")  # fmt: skip
    out.print(table)


# -- memory and provenance ---------------------------------------------------------------------


def _embedder_for(space: memory.EmbeddingSpace | None) -> memory.Embedder | None:
    """The built-in embedder when the store's space is its own (the demo's); else none: the
    CLI has no model of its own, and recall falls back to full text."""
    if space is None:
        return None
    hashing = memory.HashingEmbedder(space.dimension)
    return hashing if hashing.model == space.model else None


@app.command("recall")
def recall_(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="What to recall.")],
    k: Annotated[int, typer.Option("--k", min=1, max=1000)] = 10,
    kind: Annotated[list[str] | None, typer.Option("--kind", help="Only these kinds.")] = None,
    scope: Annotated[str | None, typer.Option()] = None,
    branch: Annotated[str | None, typer.Option(help="Memories of this branch's history.")] = None,
    include_invalidated: Annotated[bool, typer.Option("--include-invalidated")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recall memories: hybrid when the store's embedding model is available here, else full
    text."""

    async def go(s: Store) -> list[memory.RecallHit]:
        embedder = _embedder_for(await memory.get_space(s))
        return await memory.recall(
            s, text=text, embedder=embedder, k=k, kind=kind or None, scope=scope,
            branch=branch, include_invalidated=include_invalidated,
        )  # fmt: skip

    hits = _query(ctx.obj, go)
    if as_json:
        _print_json(_dump(hits))
        return
    table = Table("#", "score", "vector", "text", "kind", "memory", "content")
    for i, h in enumerate(hits, 1):
        table.add_row(
            str(i), f"{h.score:.4f}",
            "" if h.vector_score is None else f"{h.vector_score:.3f} (#{h.vector_rank})",
            "" if h.text_score is None else f"{h.text_score:.2f} (#{h.text_rank})",
            h.memory.kind, h.memory.id[:12], h.memory.content,
        )  # fmt: skip
    out.print(table)


def _label(node: provenance.Node) -> str:
    mark = "[red]INVALIDATED[/] " if node.data.get("invalidated_at") else ""
    short = node.id.partition(":")[2][:12] if node.kind == "memory" else node.id
    return f"{mark}[bold]{node.kind}[/] {short}: {_escape(node.label)}"


def _escape(text: str) -> str:
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


def _print_graph(graph: provenance.ProvenanceGraph, root: str, depth: int | None = None) -> None:
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
    out.print(f"roots: {', '.join(graph.roots) or '(none)'}", highlight=False)


def _memory_arg(value: str) -> str:
    return value.removeprefix("memory:")


@app.command()
def lineage(
    ctx: typer.Context,
    memory_id: Annotated[str, typer.Argument(metavar="MEMORY", help="Memory id.")],
    max_depth: Annotated[int | None, typer.Option(min=0)] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Where a memory came from: its derivations and root sources, as a tree."""
    mid = _memory_arg(memory_id)
    graph = _query(ctx.obj, lambda s: provenance.lineage(s, memory=mid, max_depth=max_depth))
    if as_json:
        _print_json(graph.to_dict())
        return
    _print_graph(graph, f"memory:{mid}")


@app.command()
def impact(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="A memory id, RUN:SEQ for a run event, or commit:ID.")
    ],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Everything that depends on a source or a memory: memories and decisions."""
    target = _source_arg(source)

    async def go(s: Store) -> provenance.Impact:
        if isinstance(target, str):
            return await provenance.impact(s, memory=target)
        return await provenance.impact(s, source=target)

    found = _query(ctx.obj, go)
    if as_json:
        _print_json(_dump(found))
        return
    out.print(
        f"{len(found.memories)} memories, {len(found.decisions)} decisions depend on {source}"
    )
    for d in found.decisions:
        out.print(f"  decision {d}", highlight=False)


def _source_arg(value: str) -> str | provenance.SourceRef:
    if value.startswith("commit:"):
        return provenance.StateSnapshot(commit=value.removeprefix("commit:"))
    run, sep, seq = value.rpartition(":")
    if sep and seq.isdigit() and run and not run.startswith("memory"):
        return provenance.RunTrace(run_id=run, seq=int(seq))
    return _memory_arg(value)


@app.command()
def why(
    ctx: typer.Context,
    decision: Annotated[str, typer.Argument(help="Decision id.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Why a decision was taken: the memories it used, their lineage and root sources."""
    did = decision.removeprefix("decision:")
    graph = _query(ctx.obj, lambda s: provenance.why(s, decision=did))
    if as_json:
        _print_json(graph.to_dict())
        return
    _print_graph(graph, f"decision:{did}")


@app.command()
def demo(
    ctx: typer.Context,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no tour.")] = False,
) -> None:
    """Build a realistic agent history in the store (once), then tour it: the log, a recall,
    a memory's lineage, why a decision was taken, and what distrusting a run hid."""
    from ._demo import seed

    opts: _Options = ctx.obj

    async def go() -> None:
        async with opts.store(migrate=True, check=True) as s:
            result = await _with_progress(quiet, "building", lambda p: seed(s, progress=p))
            if quiet:
                return
            verb = "built" if result.created else "found (already built)"
            out.print(
                f"[bold]demo history {verb}[/]: {result.memories} memories, "
                f"{len(result.decisions)} decisions, {len(result.invalidated)} invalidated\n"
            )
            out.rule("commit log (main)")
            history = await commits.log(s, branch="main")
            table = Table("commit", "gen", "branch", "message")
            for c in history:
                table.add_row(c.id[:12], str(c.generation), c.branch or "", c.message)
            out.print(table)
            out.rule("recall: 'train to Porto in May' (hybrid)")
            embedder = _embedder_for(await memory.get_space(s))
            hits = await memory.recall(s, text="train to Porto in May", embedder=embedder, k=5)
            table = Table("score", "vector", "text", "content")
            for h in hits:
                table.add_row(
                    f"{h.score:.4f}",
                    "" if h.vector_score is None else f"{h.vector_score:.3f}",
                    "" if h.text_score is None else f"{h.text_score:.2f}",
                    h.memory.content,
                )
            out.print(table)
            out.rule("lineage of a summary")
            _print_graph(
                await provenance.lineage(s, memory=result.summary), f"memory:{result.summary}"
            )
            if result.decisions:
                out.rule("why was this decided?")
                d = result.decisions[0]
                out.print("(two levels shown; surreal-store why DECISION shows all)")
                _print_graph(await provenance.why(s, decision=d), f"decision:{d}", depth=1)
            out.rule("what distrusting run 3 hid")
            out.print(
                f"{len(result.invalidated)} memories derived from run 3's tool calls are "
                "invalidated; recall leaves them out unless asked:"
            )
            before = await memory.recall(
                s, text="hotel prices", embedder=embedder, k=200, include_invalidated=True
            )
            after = await memory.recall(s, text="hotel prices", embedder=embedder, k=200)
            out.print(f"  recall 'hotel prices': {len(before)} with them, {len(after)} without")
            out.print("\nTry: surreal-store recall 'Kyoto hotel' | lineage MEMORY | why DECISION")

    _run(go)


async def _with_progress(
    quiet: bool, label: str, work: Callable[[Callable[[str, int], None] | None], Awaitable[T]]
) -> T:
    """Run ``work(progress)`` under a progress bar (none with ``quiet``); ``progress(step, n)``
    advances it by ``n`` and names the current step."""
    if quiet:
        return await work(None)
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def advance(step: str, n: int) -> None:
            bar.update(task, advance=n, description=f"{label}: {step}")

        return await work(advance)


def _bundle_command(
    opts: _Options, quiet: bool, label: str, run: Callable[..., Awaitable[bundles.Manifest]]
) -> bundles.Manifest:
    async def go() -> bundles.Manifest:
        async with opts.store(migrate=True, check=True) as s:
            return await _with_progress(quiet, label, lambda p: run(s, progress=p))

    return _run(go)


def _records(manifest: bundles.Manifest) -> str:
    total = sum(t["records"] for t in manifest["tables"].values())
    return f"{total} records of {len(manifest['tables'])} tables"


@app.command("export")
def export_(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Directory to write the bundle to.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Write the store to a portable bundle: JSON Lines per table and a manifest."""
    manifest = _bundle_command(
        ctx.obj, quiet, "exporting", lambda s, **kw: bundles.export_bundle(s, path, **kw)
    )
    if not quiet:
        out.print(f"exported {_records(manifest)} to {path}")


@app.command("import")
def import_(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A bundle directory made by export.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Load a bundle into an empty store at the same schema version."""
    manifest = _bundle_command(
        ctx.obj, quiet, "importing", lambda s, **kw: bundles.import_bundle(s, path, **kw)
    )
    if not quiet:
        out.print(f"imported {_records(manifest)} from {path}")


def _print_status(st: SchemaStatus, report: DriftReport | None) -> None:
    out.print(f"code schema version: [bold]{st.code_version:03d}[/]")
    out.print(f"database version:    [bold]{st.db_version:03d}[/]")
    table = Table("version", "name", "applied at", "ms", "engine", "state")
    mismatched = {f.version for f, _ in st.mismatched}
    unknown = {m.version for m in st.unknown}
    for m in st.applied:
        state = (
            "[red]changed[/]"
            if m.version in mismatched
            else "[red]unknown[/]"
            if m.version in unknown
            else "[green]applied[/]"
        )
        table.add_row(
            f"{m.version:03d}",
            m.name,
            f"{m.applied_at:%Y-%m-%d %H:%M:%S}",
            f"{m.execution_ms:.1f}",
            m.engine_version,
            state,
        )
    for f in st.pending:
        table.add_row(f"{f.version:03d}", f.name, "", "", "", "[yellow]pending[/]")
    out.print(table)
    if report is not None:
        if report.ok:
            out.print("drift: none")
        else:
            out.print(f"drift: {len(report.items)} definition(s) differ")
            for item in report.items:
                out.print(f"  {item}", highlight=False)
        if report.note:
            out.print(f"note: {report.note}")


def main() -> None:
    """Console entry point.

    It leaves through ``os._exit`` once all output is flushed: the embedded engine's runtime can
    abort the interpreter's normal shutdown (SIGABRT after all output, a known engine fault),
    which would turn a success into exit code 134. Every store is closed by then.
    """
    code = 0
    try:
        app()
    except StoreError as exc:  # raised outside _run, e.g. while building settings
        code = 1
        err.print(f"[bold red]error:[/] {' '.join(str(exc).split())}", highlight=False)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
