"""Schema commands: version, migrate, status, verify, rebless."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Column, Table

from .._migrate import DriftReport, Migrator, SchemaStatus, describe
from .._version import __version__
from ._app import Options, app, require_store, run_async, store_options
from ._render import err, out, print_json


@app.command()
def version(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print the versions of surreal-store and its SDK."""
    import importlib.metadata

    sdk = importlib.metadata.version("surrealdb")
    if as_json:
        print_json({"surreal_store": __version__, "surrealdb_sdk": sdk})
        return
    out.print(f"surreal-store {__version__}")
    out.print(f"surrealdb SDK {sdk}")


@app.command()
@store_options
def migrate(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan only.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Apply pending schema files (each in one transaction), or show the plan."""
    opts: Options = ctx.obj

    async def go() -> tuple[list[Any], list[Any], bool, bool]:
        if dry_run:
            require_store(opts)  # a plan writes nothing: not even a new store's files
        async with opts.store() as store:
            result = await Migrator(store, schema_dir=opts.schema_dir).migrate(dry_run=dry_run)
            return result.applied, result.plan, result.dry_run, result.access_layer

    applied, plan, was_dry, layered = run_async(go)
    if as_json:
        print_json(
            {
                "dry_run": was_dry,
                "applied": [f.label for f in applied],
                "access_layer": layered,
                "plan": describe(plan),
            }
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
    if not applied and not layered:
        out.print("Nothing to apply: the schema is up to date.")
    for f in applied:
        out.print(f"applied [bold]{f.label}[/]")
    if layered:
        out.print("applied the access layer (every table's and field's permissions)")


@app.command()
@store_options
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    drift: Annotated[bool, typer.Option(help="Compare live definitions too.")] = True,
) -> None:
    """Show the code's and the database's schema versions, applied and pending files, drift."""
    opts: Options = ctx.obj

    async def go() -> tuple[SchemaStatus, DriftReport | None]:
        require_store(opts)
        async with opts.store() as store:
            migrator = Migrator(store, schema_dir=opts.schema_dir)
            st = await migrator.status()
            report = await migrator.drift() if drift else None
            return st, report

    st, report = run_async(go)
    if as_json:
        data = st.to_dict()
        data["drift"] = report.to_dict() if report else None
        print_json(data)
        return
    _print_status(st, report)


@app.command()
@store_options
def verify(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check checksums, pending files and drift; exit 1 if anything is wrong."""
    opts: Options = ctx.obj

    async def go() -> tuple[SchemaStatus, DriftReport]:
        require_store(opts)
        async with opts.store() as store:
            migrator = Migrator(store, schema_dir=opts.schema_dir)
            return await migrator.status(), await migrator.drift()

    st, report = run_async(go)
    problems = [
        *(f"{f.label} changed since it was applied (rebless to accept)" for f, _ in st.mismatched),
        *(f"{f.label} is pending" for f in st.pending),
        *([] if st.access_layer_current else ["the access layer is not this code's (migrate)"]),
        *(f"version {m.version:03d} ({m.name}) is unknown to this code" for m in st.unknown),
        *(f"drift: {item}" for item in report.items),
    ]
    if as_json:
        print_json({"ok": not problems, "problems": problems, "drift": report.to_dict()})
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
@store_options
def rebless(
    ctx: typer.Context,
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="Schema file: path, name or version number.")
    ],
) -> None:
    """Accept the edited text of an applied schema file: re-apply it, record its checksum."""
    opts: Options = ctx.obj

    async def go() -> str | None:
        require_store(opts)
        async with opts.store() as store:
            f = await Migrator(store, schema_dir=opts.schema_dir).rebless(file)
            return f.label if f else None

    label = run_async(go)
    if label is None:
        out.print(f"{file}: checksum already matches; nothing to do")
    else:
        out.print(f"reblessed [bold]{label}[/]")


def _print_status(st: SchemaStatus, report: DriftReport | None) -> None:
    out.print(f"code schema version: [bold]{st.code_version:03d}[/]")
    out.print(f"database version:    [bold]{st.db_version:03d}[/]")
    mismatched = {f.version for f, _ in st.mismatched}
    unknown = {m.version for m in st.unknown}
    # Names whole and times on one line: the engine that applied them is said once (per run
    # of files it applied), not in a column of its own.
    table = Table("version", "name", "applied at", Column("ms", justify="right"), "state")
    for column in table.columns:
        column.no_wrap = True
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
            f"{m.applied_at:%Y-%m-%d %H:%M}",
            f"{m.execution_ms:.1f}",
            state,
        )
    for f in st.pending:
        table.add_row(f"{f.version:03d}", f.name, "", "", "[yellow]pending[/]")
    out.print(table)
    layer = "current" if st.access_layer_current else "[yellow]stale[/] (migrate applies it)"
    out.print(f"access layer: {layer}")
    runs: list[tuple[str, int, int]] = []  # engine, first and last version it applied
    for m in st.applied:
        if runs and runs[-1][0] == m.engine_version:
            runs[-1] = (runs[-1][0], runs[-1][1], m.version)
        else:
            runs.append((m.engine_version, m.version, m.version))
    if runs:
        said = ", ".join(
            f"{engine} ({first:03d}" + (f"-{last:03d})" if last != first else ")")
            for engine, first, last in runs
        )
        out.print(f"applied by: {said}", highlight=False)
    if report is not None:
        if report.ok:
            out.print("drift: none")
        else:
            out.print(f"drift: {len(report.items)} definition(s) differ")
            for item in report.items:
                out.print(f"  {item}", highlight=False)
        if report.note:
            out.print(f"note: {report.note}")
