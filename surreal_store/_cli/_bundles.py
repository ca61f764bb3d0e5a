"""Bundles: export and import a whole store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer

from .. import bundles
from ._app import Options, app, existing_store, run_async, store_options
from ._render import out, with_progress


def _bundle_command(
    name: str,
    *,
    doc: str,
    path_help: str,
    label: str,
    run: Callable[..., Awaitable[bundles.Manifest]],
    done: str,
) -> None:
    """Add the command ``name PATH [--quiet]``: ``run(store, path, progress=...)`` under a
    progress bar, then ``done`` filled in and printed."""

    def command(ctx: typer.Context, path: Path, quiet: bool = False) -> None:
        opts: Options = ctx.obj

        async def go() -> bundles.Manifest:
            # Exporting reads a store, which must be there; importing makes one.
            opened = (
                existing_store(opts) if name == "export" else opts.store(migrate=True, check=True)
            )
            async with opened as s:
                return await with_progress(quiet, label, lambda p: run(s, path, progress=p))

        manifest = run_async(go)
        if not quiet:
            total = sum(t["records"] for t in manifest["tables"].values())
            records = f"{total} records of {len(manifest['tables'])} tables"
            out.print(done.format(records=records, path=path))

    command.__doc__ = doc
    command.__annotations__ = {
        "ctx": typer.Context,
        "path": Annotated[Path, typer.Argument(metavar="DIR", help=path_help)],
        "quiet": Annotated[bool, typer.Option("--quiet", "-q")],
        "return": None,
    }
    app.command(name)(store_options(command))


# name, help, the path's help, progress label, work, what is printed after it
_COMMANDS: list[tuple[str, str, str, str, Callable[..., Awaitable[bundles.Manifest]], str]] = [
    ("export", "Write the store to a portable bundle: JSON Lines per table and a manifest.",
     "Directory to write the bundle to.", "exporting", bundles.export_bundle,
     "exported {records} to {path}"),
    ("import", "Load a bundle into an empty store at the same schema version.",
     "A bundle directory made by export.", "importing", bundles.import_bundle,
     "imported {records} from {path}"),
]  # fmt: skip
for _name, _doc, _path_help, _label, _run, _done in _COMMANDS:
    _bundle_command(_name, doc=_doc, path_help=_path_help, label=_label, run=_run, done=_done)
