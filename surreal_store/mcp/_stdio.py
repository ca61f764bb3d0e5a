"""The stdio transport: JSON-RPC messages, one a line, on the process's stdin and stdout.

The MCP library's own transport parses each line with pydantic's JSON parser, which refuses a
string holding a lone surrogate (``"\\ud800"``: JSON allows the escape, UTF-8 cannot carry
it), and hands the server an exception that has lost the request's id, so the client waits
for an answer forever; a line that is not JSON, or not a JSON-RPC message, goes unanswered
the same way. Here each line is parsed with Python's :mod:`json`, which takes such strings,
and then checked as a JSON-RPC message:

- a message goes to the server as the library's transport would hand it, lone surrogates
  included: a tool refuses what the store cannot hold (``ValidationError``) and a read finds
  nothing, each answered under the request's id;
- a line that is not JSON is answered with the specification's parse error (-32700, id
  ``null``);
- JSON that is not a JSON-RPC message is answered with an invalid request error (-32600)
  carrying its id when it has a usable one (``null`` otherwise); a malformed response (to a
  request of the server's) is dropped with a warning, as a response is never answered.

An answer holding a lone surrogate (an error quoting the client's text) is written with
``\\u`` escapes, as ``JSON.stringify`` writes it. While serving, the process's stdin reads
as empty and its stdout goes to stderr (the library's transport does the same), so a stray
``print`` cannot corrupt the wire.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any, BinaryIO, Final, cast

import anyio
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.mcpserver import MCPServer
from mcp.shared.message import SessionMessage
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

__all__ = ["answer_for", "encode", "refuse_first_request", "serve_stdio", "stdio_streams"]

log = logging.getLogger("surreal_store.mcp")

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
INTERNAL_ERROR: Final = -32603


def _error(code: int, message: str, request_id: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def _usable_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _first_problem(exc: ValidationError) -> str:
    """What is wrong, as pydantic says it of the kind of message it comes closest to."""
    errors = exc.errors()
    if not errors:
        return "not a request, notification or response"
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"][1:]) or "the message"
    return f"{where}: {first['msg']}"


def answer_for(line: str) -> SessionMessage | dict[str, Any] | None:
    """What a line of stdin is: a message for the server, the error answering it (a JSON-RPC
    error object), or ``None`` (nothing to do: a blank line, a malformed response)."""
    if not line.strip():
        return None
    try:
        item = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        reason = f"{exc.msg} at column {exc.colno}" if isinstance(exc, ValueError) else "too deep"
        return _error(PARSE_ERROR, f"Parse error: the line is not JSON ({reason})")
    if isinstance(item, dict) and "method" in item and "id" in item:
        request_id = item["id"]
        if request_id is None or isinstance(request_id, bool | dict | list):
            # Not an id a request may have: it would pass for a notification, never answered.
            return _error(
                INVALID_REQUEST, "Invalid Request: a request's id is a string or an integer"
            )
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_python(item, by_name=False))
    except ValidationError as exc:
        problem = _first_problem(exc)
    if isinstance(item, list):
        return _error(
            INVALID_REQUEST,
            "Invalid Request: a JSON-RPC batch (an array) is not served; send one message a line",
        )
    if not isinstance(item, dict):
        return _error(INVALID_REQUEST, "Invalid Request: a message is a JSON object")
    if "method" not in item and ("result" in item or "error" in item):
        log.warning("surreal-store mcp: a malformed response was dropped: %s", problem)
        return None
    request_id = item.get("id")
    return _error(
        INVALID_REQUEST,
        f"Invalid Request: not a JSON-RPC 2.0 message ({problem})",
        request_id if _usable_id(request_id) else None,
    )


def encode(message: SessionMessage | dict[str, Any]) -> bytes:
    """A message as one line of UTF-8 JSON. Text the client sent with a lone surrogate in it
    (quoted back in an error, say) is written with ``\\u`` escapes."""
    if isinstance(message, dict):
        return (json.dumps(message, separators=(",", ":")) + "\n").encode()
    m = message.message
    try:
        text = m.model_dump_json(by_alias=True, exclude_unset=True)
    except PydanticSerializationError:
        plain = m.model_dump(mode="json", by_alias=True, exclude_unset=True)
        text = json.dumps(plain, separators=(",", ":"))
    return (text + "\n").encode()


def _claim(fd: int, diversion: int, mode: str, claimed: list[tuple[int, int]]) -> BinaryIO:
    """A private stream (``mode``) on a duplicate of ``fd`` for the transport, ``fd`` pointed
    at ``diversion`` (closed here, whatever happens)."""
    try:
        private = os.dup(fd)
        os.set_inheritable(private, False)
        os.dup2(diversion, fd)
        claimed.append((fd, private))
    finally:
        os.close(diversion)
    # closefd=False: a worker thread may still block on it when the transport ends.
    return cast(BinaryIO, os.fdopen(private, mode, closefd=False))


def _backed(stream: Any, fd: int) -> bool:
    try:
        return bool(stream.buffer.fileno() == fd)
    except (AttributeError, OSError, ValueError):
        return False


@contextlib.contextmanager
def _wire() -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """The process's stdin and stdout as binary streams for the transport alone: fd 0 reads
    the null device and fd 1 writes to stderr while serving, and both are put back after. A
    stream replaced in the process (a test's) is served as it is."""
    claimed: list[tuple[int, int]] = []
    try:
        if _backed(sys.stdin, 0):
            stdin = _claim(0, os.open(os.devnull, os.O_RDONLY), "rb", claimed)
        else:
            stdin = sys.stdin.buffer
        if _backed(sys.stdout, 1):
            sys.stdout.flush()
            stdout = _claim(1, os.dup(2), "wb", claimed)
        else:
            stdout = sys.stdout.buffer
        yield stdin, stdout
    finally:
        for fd, private in reversed(claimed):
            with contextlib.suppress(OSError):
                os.dup2(private, fd)


@contextlib.asynccontextmanager
async def stdio_streams() -> AsyncIterator[
    tuple[MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[Any]]
]:
    """The server's read and write streams over stdin and stdout (see the module)."""
    with _wire() as (stdin, stdout):
        read_in, read_out = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        write_in, write_out = anyio.create_memory_object_stream[SessionMessage](0)
        lock = anyio.Lock()
        out = anyio.wrap_file(stdout)

        async def send(message: SessionMessage | dict[str, Any]) -> None:
            data = encode(message)
            async with lock:
                await out.write(data)
                await out.flush()

        async def reader() -> None:
            lines = anyio.wrap_file(stdin)
            async with read_in:
                with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                    async for raw in lines:
                        try:
                            found = answer_for(raw.decode("utf-8", errors="replace"))
                        except Exception as exc:  # not expected: the line alone is lost
                            log.warning("surreal-store mcp: a line was dropped: %r", exc)
                            continue
                        if isinstance(found, SessionMessage):
                            await read_in.send(found)
                        elif found is not None:
                            await send(found)

        async def writer() -> None:
            async with write_out:
                with contextlib.suppress(anyio.ClosedResourceError):
                    async for message in write_out:
                        await send(message)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(reader)
            tasks.start_soon(writer)
            yield read_out, write_in


async def serve_stdio(server: MCPServer[Any]) -> None:
    """Serve ``server`` on stdin and stdout until stdin closes."""
    low = server._lowlevel_server
    async with stdio_streams() as (read, write):
        await low.run(read, write, low.create_initialization_options())


REFUSAL_WAIT_S: Final = 10.0
"""How long a server that cannot start waits for its client's first request to answer it."""


async def refuse_first_request(message: str) -> None:
    """Answer the client's requests with an error saying ``message`` (a server that cannot
    start), so that the client shows why rather than a closed connection; the process's
    stderr has it too. A client may ask twice (a 2026-07-28 client's discovery, then its
    fallback ``initialize``): requests are answered until stdin closes, at most
    :data:`REFUSAL_WAIT_S` after the start and a second after the last answer. Not on a
    terminal."""
    if sys.stdin is None or sys.stdin.isatty() or sys.stdout is None:
        return
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    answered = False
    with anyio.move_on_after(REFUSAL_WAIT_S):
        while True:
            with anyio.move_on_after(1.0 if answered else None) as wait:
                raw = await anyio.to_thread.run_sync(stdin.readline, abandon_on_cancel=True)
            if wait.cancelled_caught or not raw:
                return
            found = answer_for(raw.decode("utf-8", errors="replace"))
            if isinstance(found, SessionMessage) and isinstance(
                found.message, types.JSONRPCRequest
            ):
                refusal = _error(INTERNAL_ERROR, message, found.message.id)
                await anyio.to_thread.run_sync(stdout.write, encode(refusal))
                await anyio.to_thread.run_sync(stdout.flush)
                answered = True
