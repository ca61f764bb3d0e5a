"""Tool calls answered by the stdio transport itself, without the MCP library's dispatch.

The reference's read tools (``search_nodes``, ``open_nodes``, ``read_graph``) answer from a
view held in memory, in a fraction of a millisecond; the library's path around them (its
message models, the request's task, the middleware chain, the tool's argument model, the
result's model and its check against the protocol's schema, a second serialization) costs
more than the answer. A request the transport can take whole is answered here with the same
result the library would give; anything else (another method or tool, arguments that are
not exactly the tool's, a ``_meta``, a connection the library has not yet accepted with
``initialize``) goes to the library as before, so its checks and error shapes stand.
"""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import pydantic_core

__all__ = ["Answer", "FastCalls", "FastTool", "answer_line", "fast_tools"]

log = logging.getLogger("surreal_store.mcp")


@dataclass(frozen=True)
class Answer:
    """A tool's result: its text, its structured content (``None``: none) and whether it is
    an error."""

    text: str
    structured: dict[str, Any] | None = None
    error: bool = False


FastTool = Callable[[dict[str, Any]], Awaitable[Answer] | None]
"""A tool the transport may call: given the call's arguments, the answer to await, or
``None`` when the arguments are not exactly the tool's (the library then validates them and
answers as it does)."""

_REQUEST_KEYS: Final = frozenset({"jsonrpc", "id", "method", "params"})
_PARAMS_KEYS: Final = frozenset({"name", "arguments"})


@dataclass
class FastCalls:
    """One connection's tool calls that the transport answers itself: the ``tools`` it may
    call, and whether the connection is one it may answer on (a handshake-era connection
    whose ``initialize`` the library accepted)."""

    tools: dict[str, FastTool]
    ready: bool = False
    _opening: set[Any] = field(default_factory=set)

    def take(self, item: Any) -> tuple[Any, str, Awaitable[Answer]] | None:
        """The request id, tool name and answer of a message the transport answers itself,
        or ``None`` (the library's)."""
        if not isinstance(item, dict):
            return None
        method = item.get("method")
        if method == "initialize":
            rid = item.get("id")
            if isinstance(rid, str | int) and not isinstance(rid, bool):
                self._opening.add(rid)
            return None
        if method != "tools/call" or not self.ready or item.keys() != _REQUEST_KEYS:
            return None
        rid, params = item["id"], item["params"]
        if item["jsonrpc"] != "2.0" or not isinstance(rid, str | int) or isinstance(rid, bool):
            return None
        if not isinstance(params, dict) or params.keys() != _PARAMS_KEYS:
            return None
        name, arguments = params["name"], params["arguments"]
        tool = self.tools.get(name) if isinstance(name, str) else None
        if tool is None or not isinstance(arguments, dict):
            return None
        answer = tool(arguments)
        return None if answer is None else (rid, name, answer)

    def answered(self, rid: Any, accepted: bool) -> None:
        """The library answered request ``rid``: an ``initialize`` it ``accepted`` (a result,
        not an error) opens the connection to the transport's answers."""
        if rid in self._opening:
            self._opening.discard(rid)
            self.ready = self.ready or accepted


async def answer_line(rid: Any, name: str, answer: Awaitable[Answer]) -> bytes:
    """The JSON-RPC response to a tool call, as the library writes it: the tool's result, an
    error result with the tool's refusal, or (a crash) ``Error executing tool NAME`` with
    the traceback in the server's log."""
    try:
        got = await answer
    except Exception:
        log.exception("surreal-store mcp: tool %r raised an unexpected exception", name)
        got = Answer(f"Error executing tool {name}", error=True)
    result: dict[str, Any] = {"content": [{"text": got.text, "type": "text"}], "isError": got.error}
    if got.structured is not None:
        result["structuredContent"] = got.structured
    message = {"jsonrpc": "2.0", "id": rid, "result": result}
    try:
        return pydantic_core.to_json(message) + b"\n"
    except pydantic_core.PydanticSerializationError:  # a lone surrogate: escaped
        return (json.dumps(message, separators=(",", ":")) + "\n").encode()


_BY_SERVER: Final[weakref.WeakKeyDictionary[Any, dict[str, FastTool]]] = weakref.WeakKeyDictionary()


def fast_tools(server: Any) -> dict[str, FastTool]:
    """The tools of ``server`` (an ``MCPServer``) that its stdio transport may answer itself,
    by name (registered by the code that adds them to the server)."""
    found = _BY_SERVER.get(server)
    if found is None:
        found = _BY_SERVER[server] = {}
    return found
