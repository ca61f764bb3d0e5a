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

When stdin and stdout are pipes (as a client starts a server), the event loop reads and
writes them, with no worker thread between a line and its handling; anything else (a file,
a terminal, a stream a test put in place) is read and written by worker threads. Calls of
the tools registered with :func:`~._fast.fast_tools` are answered here, without the
library's dispatch, when the transport can take them whole (see :mod:`._fast`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import stat
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, BinaryIO, Final, cast

import anyio
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.mcpserver import MCPServer
from mcp.shared.message import SessionMessage
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from ._fast import Answer, FastCalls, answer_line, fast_tools

__all__ = ["answer_for", "encode", "refuse_first_request", "serve_stdio", "stdio_streams"]

log = logging.getLogger("surreal_store.mcp")

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
INTERNAL_ERROR: Final = -32603
_BUFFER: Final = 1 << 20  # stdin read ahead of the server at most (a longer line is read on)


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
    ok, item = _parsed(line)
    return _message_of(item) if ok else item


def _parsed(line: str) -> tuple[bool, Any]:
    """``(True, the JSON value)`` of a line, or ``(False, the answer)``: the parse error for a
    line that is not JSON, ``None`` for a blank one."""
    if not line.strip():
        return False, None
    try:
        return True, json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        reason = f"{exc.msg} at column {exc.colno}" if isinstance(exc, ValueError) else "too deep"
        return False, _error(PARSE_ERROR, f"Parse error: the line is not JSON ({reason})")


def _message_of(item: Any) -> SessionMessage | dict[str, Any] | None:
    """:func:`answer_for` of a line that is JSON, parsed to ``item``."""
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


def _pipe(stream: BinaryIO) -> int | None:
    """The file descriptor of ``stream`` when it is a pipe or a socket (the event loop can
    watch it), else ``None``."""
    try:
        fd = stream.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):
        return None
    return fd if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) else None


def _loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # another event loop than asyncio's
        return None


async def _lines_of(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """The lines ``reader`` reads, however long (the last one without its newline)."""
    while True:
        parts: list[bytes] = []
        while True:
            try:
                parts.append(await reader.readuntil(b"\n"))
                break
            except asyncio.LimitOverrunError as exc:  # longer than the buffer: on in pieces
                parts.append(await reader.readexactly(exc.consumed))
            except asyncio.IncompleteReadError as exc:  # the end
                parts.append(exc.partial)
                break
        line = b"".join(parts)
        if not line:
            return
        yield line


@contextlib.asynccontextmanager
async def _line_source(stdin: BinaryIO) -> AsyncIterator[AsyncIterator[bytes]]:
    """stdin's lines: read by the event loop when stdin is a pipe (no thread between a line
    and its handling), else by a worker thread."""
    loop, fd = _loop(), _pipe(stdin)
    if loop is None or fd is None:
        yield aiter(anyio.wrap_file(stdin))
        return
    blocking = os.get_blocking(fd)
    reader = asyncio.StreamReader(limit=_BUFFER, loop=loop)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), stdin
    )
    try:
        yield _lines_of(reader)
    finally:
        transport.close()
        os.set_blocking(fd, blocking)  # the pipe is shared with whoever started the process


class _Drained(asyncio.Protocol):
    """A write pipe's flow control: :meth:`drain` returns once what was written is out."""

    def __init__(self) -> None:
        self.waiter: asyncio.Future[None] | None = None
        self.lost = False

    def pause_writing(self) -> None:
        self.waiter = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)
        self.waiter = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.resume_writing()

    async def drain(self) -> None:
        if self.waiter is not None:
            await self.waiter
        if self.lost:
            raise BrokenPipeError("stdout was closed")


@contextlib.asynccontextmanager
async def _line_sink(stdout: BinaryIO) -> AsyncIterator[Callable[[bytes], Awaitable[None]]]:
    """A writer of lines to stdout, each out when its call returns: by the event loop when
    stdout is a pipe, else by a worker thread."""
    loop, fd = _loop(), _pipe(stdout)
    if loop is None or fd is None:
        out = anyio.wrap_file(stdout)

        async def write_file(data: bytes) -> None:
            await out.write(data)
            await out.flush()

        yield write_file
        return
    blocking = os.get_blocking(fd)
    transport, protocol = await loop.connect_write_pipe(_Drained, stdout)
    transport.set_write_buffer_limits(high=0)

    async def write_pipe(data: bytes) -> None:
        transport.write(data)
        await protocol.drain()

    try:
        yield write_pipe
    finally:
        transport.close()
        os.set_blocking(fd, blocking)


@contextlib.asynccontextmanager
async def stdio_streams(
    fast: FastCalls | None = None,
) -> AsyncIterator[
    tuple[MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[Any]]
]:
    """The server's read and write streams over stdin and stdout (see the module). The tool
    calls ``fast`` takes are answered here; every other message goes through the streams."""
    with _wire() as (stdin, stdout):
        read_in, read_out = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        write_in, write_out = anyio.create_memory_object_stream[SessionMessage](0)
        lock = anyio.Lock()
        async with _line_sink(stdout) as write_line, _line_source(stdin) as lines:

            async def send(message: SessionMessage | dict[str, Any]) -> None:
                data = encode(message)
                if fast is not None and isinstance(message, SessionMessage):
                    m = message.message
                    if isinstance(m, types.JSONRPCResponse | types.JSONRPCError):
                        fast.answered(m.id, isinstance(m, types.JSONRPCResponse))
                async with lock:
                    await write_line(data)

            async def answer(rid: Any, name: str, got: Awaitable[Answer]) -> None:
                data = await answer_line(rid, name, got)
                async with lock:
                    await write_line(data)

            async def reader() -> None:
                async with read_in:
                    with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                        async for raw in lines:
                            try:
                                ok, item = _parsed(raw.decode("utf-8", errors="replace"))
                                taken = fast.take(item) if ok and fast is not None else None
                                if taken is not None:
                                    tasks.start_soon(answer, *taken)
                                    continue
                                found = _message_of(item) if ok else item
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


async def serve_stdio(server: MCPServer[Any], fast: FastCalls | None = None) -> None:
    """Serve ``server`` on stdin and stdout until stdin closes. The calls of the tools it
    registered for it (:func:`~._fast.fast_tools`) are answered by the transport, or those
    ``fast`` takes."""
    low = server._lowlevel_server
    if fast is None:
        fast = FastCalls(fast_tools(server))
    async with stdio_streams(fast) as (read, write):
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
