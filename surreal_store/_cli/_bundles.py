"""Bundles: export and import a whole store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer

from .. import bundles
from ._app import Options, app, run_async, store_options
from ._render import out, with_progress


def _bundle_command(
    opts: Options, quiet: bool, label: str, run: Callable[..., Awaitable[bundles.Manifest]]
) -> bundles.Manifest:
    async def go() -> bundles.Manifest:
        async with opts.store(migrate=True, check=True) as s:
            return await with_progress(quiet, label, lambda p: run(s, progress=p))

    return run_async(go)


def _records(manifest: bundles.Manifest) -> str:
    total = sum(t["records"] for t in manifest["tables"].values())
    return f"{total} records of {len(manifest['tables'])} tables"


@app.command("export")
@store_options
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
@store_options
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
