"""An MCP memory server on surreal-store (``pip install 'surreal-store[mcp]'``).

``surreal-store mcp`` serves the store named by the usual settings over stdio (or streamable
HTTP with ``--http``): remember, recall, provenance and decisions as Model Context Protocol
tools, and memories and decisions as resources. :func:`serve` is that command;
:func:`create_server` builds the server on an open store, for a program of one's own.
"""

try:
    import mcp.server.mcpserver  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "surreal_store.mcp needs the MCP SDK: pip install 'surreal-store[mcp]'"
    ) from exc

from ._server import EmbedderChoice, create_server, resolve_embedder, serve

__all__ = ["EmbedderChoice", "create_server", "resolve_embedder", "serve"]
