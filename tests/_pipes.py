"""An MCP server over stdio spoken to line by line, as raw JSON-RPC: the MCP client library
cannot send what some tests send (a lone surrogate, a line that is not JSON)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process

CLIENT = {"name": "raw", "version": "1"}
# A 2026-07-28 request's envelope (no initialize handshake).
MODERN = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": CLIENT,
    "io.modelcontextprotocol/clientCapabilities": {},
}


class Pipes:
    """A server process's stdin and stdout."""

    def __init__(self, process: Process) -> None:
        from anyio.streams.buffered import BufferedByteReceiveStream

        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self.stdin = process.stdin
        self.lines = BufferedByteReceiveStream(process.stdout)

    async def send(self, *lines: str) -> None:
        await self.stdin.send("".join(line + "\n" for line in lines).encode())

    async def answers(self, n: int, *, within: float = 60) -> list[dict[str, Any]]:
        """The next ``n`` answers (notifications skipped), in the order they came."""
        got: list[dict[str, Any]] = []
        with anyio.fail_after(within):
            while len(got) < n:
                message = json.loads(await self.lines.receive_until(b"\n", 1 << 24))
                if "id" in message:
                    got.append(message)
        return got

    async def handshake(self) -> None:
        await self.send(
            line({"id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": CLIENT,
            }}),
            line({"method": "notifications/initialized"}),
        )  # fmt: skip
        (answer,) = await self.answers(1)
        assert answer["id"] == 0 and "result" in answer, answer


async def ours(tmp_path: Path) -> Process:
    """``surreal-store mcp`` on a new store under ``tmp_path``."""
    return await anyio.open_process(
        [sys.executable, "-m", "surreal_store", "mcp", "--url",
         f"surrealkv://{tmp_path / 'kv'}", "--embedder", "none"],
        cwd=tmp_path, env=dict(os.environ), stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def reference(script: Path, tmp_path: Path) -> Process:
    """The reference memory server on a new file under ``tmp_path``."""
    return await anyio.open_process(
        ["node", str(script)],
        cwd=tmp_path,
        env={**os.environ, "MEMORY_FILE_PATH": str(tmp_path / "memory.jsonl")},
        stderr=subprocess.DEVNULL,
    )


def line(message: dict[str, Any]) -> str:
    """A JSON-RPC message as a line; a lone surrogate is written as the ``\\ud800`` escape
    JSON allows."""
    return json.dumps({"jsonrpc": "2.0", **message})


def tool(request_id: int, name: str, arguments: dict[str, Any], *, modern: bool = False) -> str:
    """A ``tools/call`` request as a line."""
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if modern:
        params["_meta"] = MODERN
    return line({"id": request_id, "method": "tools/call", "params": params})
