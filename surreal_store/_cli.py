"""The ``surreal-store`` command line.

Every command opens the store from settings (``--url`` etc. beat ``SURREAL_STORE_*``), prints a
rich table or, with ``--json``, one JSON document, and exits non-zero with one line on error.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import anyio
import typer
from pydantic import BaseModel
from rich.console import Console
from rich.padding import Padding
from rich.progress import Progress
from rich.table import Column, Table
from rich.text import Text
from rich.tree import Tree

from . import branches, bundles, commits, memory, provenance, releases, runs
from ._client import Store
from ._config import Settings
from ._errors import NotFoundError, QueryError, StoreError, ValidationError
from ._migrate import DriftReport, Migrator, SchemaStatus, describe
from ._types import RecordId
from ._version import __version__

try:  # typer 0.29 and later vendor their own click
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - older typer uses click itself
    from click.exceptions import (  # type: ignore[import-not-found,no-redef]
        ClickException,
        UsageError,
    )

__all__ = ["app", "main"]

T = TypeVar("T")


class _Group(typer.core.TyperGroup):
    """Usage errors are one line, like every other error: ``error: ...`` and exit 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "surreal-store"
            message = " ".join(exc.format_message().split())
            err.print(f"[bold red]error:[/] {_escape(message)} (see: {where} --help)")
            sys.exit(exc.exit_code)
        except ClickException as exc:
            err.print(f"[bold red]error:[/] {_escape(' '.join(exc.format_message().split()))}")
            sys.exit(exc.exit_code)
        except typer.Abort:
            err.print("[bold red]error:[/] aborted")
            sys.exit(1)
        except StoreError as exc:  # raised outside _run, e.g. while reading the settings
            err.print(f"[bold red]error:[/] {_escape(_message(exc))}", highlight=False)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="surreal-store",
    help=(
        "A provenance-first knowledge store for AI agents, on SurrealDB. Store options "
        "(--url, --ns, --db, --username, --password, --schema-dir) go before or after the "
        "command."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_Group,
)
out = Console()
err = Console(stderr=True, soft_wrap=True)  # an error is one line, whatever the width


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
    err.print(f"[bold red]error:[/] {_escape(message)}", highlight=False, markup=True)
    raise typer.Exit(code)


def _message(exc: StoreError) -> str:
    """What the user reads: the database's answer, never the statement that got it."""
    text = exc.message if isinstance(exc, QueryError) else str(exc)
    return " ".join(text.split())


def _run(fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn`` on asyncio (the SDK needs it); errors become one line and exit code 1."""
    try:
        return anyio.run(fn, backend="asyncio")
    except StoreError as exc:
        _fail(_message(exc))
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


_STORE_OPTIONS: dict[str, Any] = {
    "url": Annotated[str | None, typer.Option(help="Store URL (as before the command).")],
    "namespace": Annotated[str | None, typer.Option("--namespace", "--ns")],
    "database": Annotated[str | None, typer.Option("--database", "--db")],
    "username": Annotated[str | None, typer.Option()],
    "password": Annotated[str | None, typer.Option(help="Prefer SURREAL_STORE_PASSWORD.")],
    "schema_dir": Annotated[Path | None, typer.Option()],
}


def _store_options(fn: Callable[..., None]) -> Callable[..., None]:
    """Let a command take the store options after its name too (``migrate --url X``); given
    there, they beat those given before the command."""
    signature = inspect.signature(fn, eval_str=True)
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind)
        for name, kind in _STORE_OPTIONS.items()
    ]

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> None:
        given = {name: kwargs.pop(name) for name in _STORE_OPTIONS}
        ctx: typer.Context = kwargs["ctx"]
        if ctx.obj is None:
            ctx.obj = _Options()
        for f in fields(_Options):
            if given.get(f.name) is not None:
                setattr(ctx.obj, f.name, given[f.name])
        fn(*args, **kwargs)

    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()]
    command.__signature__ = signature.replace(parameters=[*params, *extra])  # type: ignore[attr-defined]
    command.__annotations__ = {
        **{p.name: p.annotation for p in signature.parameters.values()},
        **_STORE_OPTIONS,
        "return": None,
    }
    return command


@app.command()
def version(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print the versions of surreal-store and its SDK."""
    import importlib.metadata

    sdk = importlib.metadata.version("surrealdb")
    if as_json:
        _print_json({"surreal_store": __version__, "surrealdb_sdk": sdk})
        return
    out.print(f"surreal-store {__version__}")
    out.print(f"surrealdb SDK {sdk}")


@app.command()
@_store_options
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
@_store_options
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
@_store_options
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
@_store_options
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


# Ids a person types: the whole key, ``table:key``, or a unique prefix of the key (as git takes
# a commit's), at least this long.
_MIN_PREFIX = 6
_KEY_LENGTH = {"commit": 64, "memory": 64, "decision": 32}
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_BY_PREFIX = (
    "SELECT VALUE record::id(id) FROM type::table($table) "
    "WHERE id >= type::record($table, $low) AND id < type::record($table, $high) "
    "ORDER BY id LIMIT 6;"
)


async def _resolve(store: Store, text: str, kind: str) -> str:
    """The full key of the ``kind`` record that ``text`` names: a key, ``kind:key``, or a
    unique prefix of at least six hex characters."""
    table, sep, key = text.strip().partition(":")
    if not sep:
        key = table
    elif table != kind:
        raise ValidationError(f"{text!r} is a {table} id, but a {kind} id is expected here")
    full = _KEY_LENGTH[kind]
    if not _HEX.match(key) or len(key) >= full:
        return key  # a whole key, or none at all: the library checks it and says which
    key = key.lower()
    if len(key) < _MIN_PREFIX:
        raise ValidationError(f"give at least {_MIN_PREFIX} hex characters of the {kind} id")
    found = await store.query(_BY_PREFIX, str, table=kind, low=key, high=key + "g")
    if not found:
        raise NotFoundError(f"no {kind} id starts with {key}")
    if len(found) > 1:
        shown = ", ".join(f[:12] for f in found[:5]) + (", ..." if len(found) > 5 else "")
        raise ValidationError(f"{kind} id prefix {key} is ambiguous: {shown}; give more characters")
    return found[0]


# Free text (a message, a memory's content) gets at least this many columns in a table; on a
# narrower terminal each row prints as a line of its short fields and the text below it.
_TEXT_MIN = 32


def _print_rows(headers: Sequence[str], rows: Sequence[Sequence[str]], *, text: str) -> None:
    """A table whose ``text`` column wraps by words, never squeezed below ``_TEXT_MIN``."""
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
    for r in rows:
        head = "  ".join(cell for i, cell in enumerate(r) if i != at and cell)
        out.print(Text(head, style="bold"))
        out.print(Padding(Text(r[at]), (0, 0, 0, 4), expand=False))


def _dump(items: Any) -> Any:
    if isinstance(items, list):
        return [_dump(i) for i in items]
    if isinstance(items, BaseModel):
        return items.model_dump(mode="json")
    return items


@app.command("log")
@_store_options
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

    async def go(s: Store) -> list[commits.Commit]:
        start = await _resolve(s, commit, "commit") if commit else None
        return await commits.log(
            s, commit=start, branch=None if start else branch, limit=limit,
            first_parent=first_parent,
        )  # fmt: skip

    history = _query(opts, go)
    if as_json:
        _print_json(_dump(history))
        return
    rows = [
        [c.id[:12], str(c.generation), f"{c.created_at:%Y-%m-%d %H:%M}", c.author,
         c.branch or "", c.message + (" (merge)" if len(c.parents) > 1 else "")]
        for c in history
    ]  # fmt: skip
    _print_rows(["commit", "gen", "when", "author", "branch", "message"], rows, text="message")


@app.command()
@_store_options
def show(
    ctx: typer.Context,
    commit: Annotated[str, typer.Argument(help="Commit id, or a unique prefix of 6+ hex.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One commit and its state."""
    opts: _Options = ctx.obj

    async def fetch(s: Store) -> tuple[commits.Commit, dict[str, Any]]:
        key = await _resolve(s, commit, "commit")
        return await commits.get(s, commit=key), await commits.get_state(s, commit=key)

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
@_store_options
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
@_store_options
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
                      f"{r.created_at:%Y-%m-%d %H:%M}", r.spec_digest[:8])  # fmt: skip
    out.print(table)


@app.command("events")
@_store_options
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
    rows = [
        [str(e.seq), e.kind, f"{e.timestamp:%H:%M:%S.%f}",
         json.dumps(e.payload, ensure_ascii=False)]
        for e in found
    ]  # fmt: skip
    _print_rows(["seq", "kind", "time", "payload"], rows, text="payload")


@app.command("releases")
@_store_options
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
@_store_options
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
    rows = [
        [
            str(i), f"{h.score:.4f}",
            "" if h.vector_score is None else f"{h.vector_score:.3f} (#{h.vector_rank})",
            "" if h.text_score is None else f"{h.text_score:.2f} (#{h.text_rank})",
            h.memory.kind, h.memory.id[:12], h.memory.content,
        ]
        for i, h in enumerate(hits, 1)
    ]  # fmt: skip
    _print_rows(["#", "score", "vector", "text", "kind", "memory", "content"], rows,
                text="content")  # fmt: skip


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
    return f"{mark}[bold]{kind}[/] {_escape(_ref(node))}: {_escape(text)}"


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
    roots = [_ref(graph.nodes[r]) if r in graph.nodes else r for r in graph.roots]
    out.print(f"roots: {', '.join(roots) or '(none)'}", highlight=False)


@app.command()
@_store_options
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
        mid = await _resolve(s, memory_id, "memory")
        return mid, await provenance.lineage(s, memory=mid, max_depth=max_depth)

    mid, graph = _query(ctx.obj, go)
    if as_json:
        _print_json(graph.to_dict())
        return
    _print_graph(graph, f"memory:{mid}")


@app.command()
@_store_options
def impact(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="A memory id, RUN:SEQ for a run event, or commit:ID.")
    ],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Everything that depends on a source or a memory: memories and decisions."""

    async def go(s: Store) -> provenance.Impact:
        target = await _source_arg(s, source)
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


async def _source_arg(store: Store, value: str) -> str | provenance.SourceRef:
    """``commit:ID`` (a snapshot), ``RUN:SEQ`` (a run event) or a memory id (the key, or
    ``memory:`` and the key; prefixes of 6+ hex are resolved)."""
    if value.startswith("commit:"):
        return provenance.StateSnapshot(commit=await _resolve(store, value, "commit"))
    run, sep, seq = value.rpartition(":")
    if sep and seq.isdigit() and run and run != "memory":
        await runs.get_run(store, run_id=run)  # NotFoundError for an unknown run
        trace = provenance.RunTrace(run_id=run, seq=int(seq))
        if not await runs.events(store, run_id=run, from_seq=trace.seq, limit=1):
            raise NotFoundError(f"run {run} has no event {trace.seq}")
        return trace
    return await _resolve(store, value, "memory")


@app.command()
@_store_options
def why(
    ctx: typer.Context,
    decision: Annotated[str, typer.Argument(help="Decision id, or a unique prefix of 6+ hex.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Why a decision was taken: the memories it used, their lineage and root sources."""

    async def go(s: Store) -> tuple[str, provenance.ProvenanceGraph]:
        did = await _resolve(s, decision, "decision")
        return did, await provenance.why(s, decision=did)

    did, graph = _query(ctx.obj, go)
    if as_json:
        _print_json(graph.to_dict())
        return
    _print_graph(graph, f"decision:{did}")


@app.command()
@_store_options
def demo(
    ctx: typer.Context,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no tour.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="What was built, as JSON (no progress, no tour).")
    ] = False,
) -> None:
    """Build a realistic agent history in the store (once), then tour it: the log, a recall,
    a memory's lineage, why a decision was taken, and what distrusting a run hid."""
    from ._demo import seed

    opts: _Options = ctx.obj

    async def go() -> None:
        async with opts.store(migrate=True, check=True) as s:
            result = await _with_progress(
                quiet or as_json, "building", lambda p: seed(s, progress=p)
            )
            if as_json:
                _print_json(dataclasses.asdict(result))
            if quiet or as_json:
                return
            verb = "built" if result.created else "found (already built)"
            out.print(
                f"[bold]demo history {verb}[/]: {result.memories} memories, "
                f"{len(result.decisions)} decisions, {len(result.invalidated)} invalidated\n"
            )
            out.rule("commit log (main)")
            history = await commits.log(s, branch="main")
            rows = [[c.id[:12], str(c.generation), c.branch or "", c.message] for c in history]
            _print_rows(["commit", "gen", "branch", "message"], rows, text="message")
            out.rule("recall: 'train to Porto in May' (hybrid)")
            embedder = _embedder_for(await memory.get_space(s))
            hits = await memory.recall(s, text="train to Porto in May", embedder=embedder, k=5)
            rows = [
                [f"{h.score:.4f}", "" if h.vector_score is None else f"{h.vector_score:.3f}",
                 "" if h.text_score is None else f"{h.text_score:.2f}", h.memory.content]
                for h in hits
            ]  # fmt: skip
            _print_rows(["score", "vector", "text", "content"], rows, text="content")
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
@_store_options
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
@_store_options
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
        app(prog_name="surreal-store")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
