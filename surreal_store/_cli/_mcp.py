"""``surreal-store mcp``: the MCP memory server (the ``mcp`` extra)."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from ._app import Options, app, fail, run_async, store_options


@app.command()
@store_options
def mcp(
    ctx: typer.Context,
    http: Annotated[
        bool, typer.Option("--http", help="Serve streamable HTTP instead of stdio.")
    ] = False,
    host: Annotated[str, typer.Option(help="With --http: the address to listen on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="With --http: the port.")] = 8000,
    embedder: Annotated[
        str,
        typer.Option(
            help="auto (the store's own), none (full text only), hashing[:DIM] or "
            "sentence-transformers:NAME."
        ),
    ] = "auto",
) -> None:
    """Serve the store as an MCP memory server (stdio by default): remember, recall,
    provenance and decisions as tools for any MCP client."""
    try:
        from ..mcp import serve
    except ImportError as exc:
        fail(str(exc))
    opts: Options = ctx.obj

    async def go() -> None:
        await serve(
            settings=opts.settings(), schema_dir=opts.schema_dir, embedder=embedder,
            transport="http" if http else "stdio", host=host, port=port,
        )  # fmt: skip

    with contextlib.suppress(KeyboardInterrupt):  # ^C ends a server: no error
        run_async(go)
