"""Reading the domains: log, show, branches, runs, events, releases."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from .. import branches, commits
from .._client import Store
from .._errors import ValidationError
from ._app import Options, app, fail, resolve_id, store_options, with_store
from ._lazy import releases, runs
from ._render import dump, out, print_json, print_rows


@app.command("log")
@store_options
def log_(
    ctx: typer.Context,
    branch: Annotated[
        str | None, typer.Option(help="Branch whose history to show (default: the default).")
    ] = None,
    commit: Annotated[str | None, typer.Option(help="Start at this commit instead.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
    first_parent: Annotated[bool, typer.Option("--first-parent")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Commit history, newest first (children before their parents)."""
    opts: Options = ctx.obj

    async def go(s: Store) -> list[commits.Commit]:
        if commit is not None and branch is not None:
            raise ValidationError("give --branch or --commit, not both")
        start = await resolve_id(s, commit, "commit") if commit else None
        return await commits.log(
            s, commit=start, branch=branch, limit=limit, first_parent=first_parent
        )

    history = with_store(opts, go)
    if as_json:
        print_json(dump(history))
        return
    rows = [
        [c.id[:12], str(c.generation), f"{c.created_at:%Y-%m-%d %H:%M}", c.author,
         c.branch or "", c.message + (" (merge)" if len(c.parents) > 1 else "")]
        for c in history
    ]  # fmt: skip
    print_rows(["commit", "gen", "when", "author", "branch", "message"], rows, text="message",
               empty="no commits yet")  # fmt: skip


@app.command()
@store_options
def show(
    ctx: typer.Context,
    commit: Annotated[
        str, typer.Argument(metavar="COMMIT", help="Commit id, or a unique prefix of 6+ hex.")
    ],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One commit and its state."""
    opts: Options = ctx.obj

    async def fetch(s: Store) -> tuple[commits.Commit, dict[str, Any]]:
        key = await resolve_id(s, commit, "commit")
        return await commits.get(s, commit=key), await commits.get_state(s, commit=key)

    found, state = with_store(opts, fetch)
    if as_json:
        print_json({"commit": dump(found), "state": state})
        return
    out.print(f"[bold]commit {found.id}[/]")
    out.print(f"parents:  {', '.join(found.parents) or '(root)'}")
    out.print(f"author:   {found.author}   branch: {found.branch}   generation: {found.generation}")
    out.print(f"date:     {found.created_at:%Y-%m-%d %H:%M:%S %Z}")
    out.print(f"\n    {found.message}\n")
    out.print_json(data=state)


@app.command("branches")
@store_options
def branches_(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Branches and their heads."""
    found = with_store(ctx.obj, branches.list_all)
    if as_json:
        print_json(dump(found))
        return
    if not found:
        out.print("no branches yet: the first commit makes one")
        return
    table = Table("", "branch", "head", "updated")
    for b in found:
        table.add_row("*" if b.is_default else "", b.name, b.head[:12],
                      f"{b.updated_at:%Y-%m-%d %H:%M:%S}")  # fmt: skip
    out.print(table)


@app.command("runs")
@store_options
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
        fail(f"unknown status {status!r}: RUNNING, COMPLETED, FAILED or CANCELLED")
    found = with_store(
        ctx.obj,
        lambda s: runs.list_runs(
            s, agent_name=agent, spec_digest=spec, limit=limit,
            status=status.upper() if status else None,  # type: ignore[arg-type]
        ),
    )  # fmt: skip
    if as_json:
        print_json(dump(found))
        return
    if not found:
        out.print("no runs" + (" match" if agent or status or spec else " yet"))
        return
    table = Table("run", "agent", "status", "events", "created", "spec")
    for r in found:
        events = str(r.summary.total_events) if r.summary else ""
        table.add_row(r.id, r.agent_name, r.status, events,
                      f"{r.created_at:%Y-%m-%d %H:%M}", r.spec_digest[:8])  # fmt: skip
    out.print(table)


@app.command("events")
@store_options
def events_(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(metavar="RUN", help="Run id.")],
    from_seq: Annotated[int, typer.Option("--from", min=1, help="First seq to show.")] = 1,
    limit: Annotated[int | None, typer.Option(min=1)] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A run's events in order (a replay from --from)."""
    found = with_store(
        ctx.obj, lambda s: runs.events(s, run_id=run, from_seq=from_seq, limit=limit)
    )
    if as_json:
        print_json(dump(found))
        return
    rows = [
        [str(e.seq), e.kind, f"{e.timestamp:%H:%M:%S.%f}",
         json.dumps(e.payload, ensure_ascii=False)]
        for e in found
    ]  # fmt: skip
    none = f"run {run} has no events" + (f" from {from_seq}" if from_seq > 1 else "")
    print_rows(["seq", "kind", "time", "payload"], rows, text="payload", empty=none)


@app.command("releases")
@store_options
def releases_(
    ctx: typer.Context,
    agent: Annotated[str, typer.Argument(metavar="AGENT", help="Agent name.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """An agent's release history, newest first; the first row is current."""
    found = with_store(ctx.obj, lambda s: releases.history(s, agent_name=agent))
    if as_json:
        print_json(dump(found))
        return
    if not found:
        out.print(f"no releases for agent {agent!r}", highlight=False)
        return
    table = Table("seq", "version", "action", "spec", "by", "when")
    for r in found:
        action = f"rollback to #{r.restores}" if r.action == "rollback" else "promote"
        table.add_row(str(r.seq), r.version_label, action, r.spec_digest[:12], r.promoted_by,
                      f"{r.created_at:%Y-%m-%d %H:%M:%S}")  # fmt: skip
    out.print(table)
