"""A new user's walk through the README, in the order it is read, then through the pages of
``docs/`` it sends them to for access control and the command line, in a fresh home: every
command and block as written (the demo, its hint, the Python blocks with the cells pasted at
the ``python -m asyncio`` prompt, the MCP server's first calls, the command lines), run as a
person runs them: the installed ``surreal-store``, first as ``.venv/bin/surreal-store`` as the
README's first command calls it, then with the virtualenv activated as the README then says.

It fails on a traceback, an exit status other than 0 where the README promises success, a line
of a command's output longer than 80 columns (unless it is one word that cannot wrap: a path)
or ending in spaces. What it does not run, and why, is in ``_SKIPPED``."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# The README, then the pages holding the commands that left it (tenants' users, migrations,
# a server).
WALKED = [README, ROOT / "docs" / "access.md", ROOT / "docs" / "cli.md"]
_FENCES = re.compile(r"^```(\w+)\n(.*?)^```", flags=re.M | re.S)

# README lines a walk on this machine does not run, with the reason.
_SKIPPED = {
    "./scripts/test": "this walk runs inside it",
    "docker compose": "no Docker engine here; the server tests run against a server when set",
    "--http": "streamable HTTP: tests/test_mcp.py serves and calls it",
    "...": "a placeholder the reader fills in",
    "SURREAL_STORE_URL=ws://": "a server's URL: no server here",
}


class Walk:
    def __init__(self, tmp_path: Path) -> None:
        venv = Path(sys.executable).parent.parent
        assert (venv / "bin" / "surreal-store").exists(), "the package is not installed here"
        self.home = tmp_path / "home"
        self.work = self.home / "project"  # where the reader runs the README's commands
        self.work.mkdir(parents=True)
        (self.work / ".venv").symlink_to(venv)  # the virtualenv of the README's first command
        bin_dir = str(venv / "bin")
        path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p != bin_dir]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SURREAL_STORE_")}
        self.env.update(
            HOME=str(self.home),
            XDG_DATA_HOME=str(self.home / ".local" / "share"),
            COLUMNS="80",
            PATH=os.pathsep.join(path),  # not activated yet
        )
        self.activated = {**self.env, "PATH": os.pathsep.join([bin_dir, *path])}
        self.ran: list[str] = []

    def sh(self, line: str, *, env: dict[str, str] | None = None, stdin: str = "") -> str:
        """Run ``line`` in bash as the reader would; its output must read at 80 columns (JSON,
        for programs, is not for reading)."""
        done = subprocess.run(
            ["bash", "-c", line],
            cwd=self.work,
            env=env or self.activated,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        self.ran.append(line)
        assert done.returncode == 0, (line, done.stdout[-2000:], done.stderr[-2000:])
        assert "Traceback" not in done.stderr + done.stdout, (line, done.stderr)
        for text in (done.stdout, done.stderr):
            if "--json" in line:
                json.loads(done.stdout)
                break
            for out in text.splitlines():
                assert len(out) <= 80 or " " not in out.strip(), (line, out)
                assert out == out.rstrip(), (line, out)
        return done.stdout

    def python(self, source: str, number: int) -> None:
        script = self.work / f"readme_block_{number}.py"
        script.write_text(source)
        self.sh(f"python {script.name}")

    def paste(self, cells: list[str]) -> None:
        """The cells at one ``python -m asyncio`` prompt, each followed by a blank line."""
        typed = "".join(f"print('-- cell {n}')\n{c.rstrip()}\n\n" for n, c in enumerate(cells))
        done = subprocess.run(
            ["python", "-m", "asyncio"],
            cwd=self.work,
            env=self.activated,
            input=typed + "print('-- end')\n",
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        self.ran.append(f"python -m asyncio ({len(cells)} cells)")
        assert done.returncode == 0 and "-- end" in done.stdout, done.stderr
        assert not re.search(r"Error|Traceback|Exception", done.stderr), done.stderr


def _commands(block: str) -> list[str]:
    """A bash block's commands: comments dropped, the install of the first command too (the
    walk runs in the virtualenv that is installed already)."""
    found = []
    for raw in block.splitlines():
        line = re.sub(r"\s+#.*$", "", raw).strip()
        if line and not line.startswith("#"):
            found.append(line.split(" && ")[-1] if ".venv/bin/pip install" in line else line)
    return found


def _filled(line: str, values: dict[str, str]) -> str:
    """A synopsis line as the reader types it: options in brackets left out, each placeholder
    (TEXT, MEMORY, ...) filled in with a value of the demo's."""
    line = re.sub(r"\s*\[[^\]]*\]", "", line)
    return " ".join(values.get(word, word) for word in line.split())


async def _mcp_first_minute(walk: Walk, args: list[str], vector: bool) -> dict[str, Any]:
    """The calls a client makes first: the tools, remember, recall, log."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(
        command=args[0], args=args[1:], cwd=str(walk.work), env=walk.activated
    )
    answers: dict[str, Any] = {}
    async with Client(params) as c:
        tools = {t.name for t in (await c.list_tools()).tools}
        assert {"remember", "recall", "lineage", "why", "log"} <= tools

        async def call(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
            result = await c.call_tool(tool, arguments)
            assert not result.is_error, (tool, result.content)
            assert isinstance(result.structured_content, dict)
            return dict(result.structured_content)

        answers["remember"] = await call("remember", {"content": "the user likes window seats"})
        answers["log"] = await call("log", {})
        query: dict[str, Any] = {"query": "window seats"}
        if vector:  # memories stored before this server had an embedder are embedded by it
            query["mode"] = "vector"
            for _ in range(100):
                answers["recall"] = await call("recall", query)
                if len(answers["recall"]["hits"]) >= 1:
                    break
                await anyio.sleep(0.1)
        else:
            answers["recall"] = await call("recall", query)
    walk.ran.append(" ".join(args))
    return answers


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="the README's commands are POSIX shell")
def test_a_new_user_follows_the_readme_in_order(tmp_path: Path) -> None:
    pytest.importorskip("mcp.server.mcpserver")
    walk = Walk(tmp_path)
    text = "\n".join(page.read_text() for page in WALKED)
    values: dict[str, str] = {}
    cells: list[str] = []
    skipped: list[tuple[str, str]] = []  # a line and why it is not run
    for number, match in enumerate(_FENCES.finditer(text), 1):
        lang, block = match.group(1), match.group(2)
        if lang == "python" and "anyio.run(" not in block:
            cells.append(block)  # pasted with the cells that follow it, at one prompt
            continue
        if cells:
            walk.paste(cells)
            cells = []
        if lang == "python":
            walk.python(block, number)
        elif lang == "json":  # an MCP client's configuration: the server it starts
            server = json.loads(block)["mcpServers"]["memory"]
            args = [server["command"], *server["args"]]
            args = [a.replace("/home/me", str(walk.home)) for a in args]
            answers = anyio.run(_mcp_first_minute, walk, args, True)
            hits = answers["recall"]["hits"]
            assert answers["recall"]["mode"] == "vector" and hits, answers
        elif lang == "bash":
            server = "docker compose" in block  # a block for a server this machine lacks
            for line in _commands(block):
                typed = _filled(line, values)
                keys = ["docker compose"] if server else [k for k in _SKIPPED if k in typed]
                if keys:
                    skipped.append((line, _SKIPPED[keys[0]]))
                    continue
                if line.startswith("surreal-store mcp"):
                    args = shlex.split(line.replace("$HOME", str(walk.home)))
                    answers = anyio.run(_mcp_first_minute, walk, args, False)
                    # A new store: full text, said so; and a log that is empty, not an error.
                    assert answers["recall"]["mode"] == "fulltext", answers
                    assert answers["log"] == {"commits": []}
                    continue
                if line.startswith(".venv/bin/surreal-store demo"):
                    _demo(walk, line, values)
                    continue
                secret = "a-password\n" if " users add " in line else ""
                walk.sh(typed, stdin=secret)
    assert not cells
    # What the walk left out is what _SKIPPED names, nothing else.
    assert {why for _, why in skipped} <= set(_SKIPPED.values()), skipped
    assert len(skipped) <= 12, skipped
    assert any(line.startswith("surreal-store recall 'Kyoto hotel'") for line in walk.ran)
    assert len(walk.ran) >= 30, walk.ran


def _demo(walk: Walk, line: str, values: dict[str, str]) -> None:
    """The README's first command, not activated; then its closing hint, run as printed."""
    shown = walk.sh(line, env=walk.env)
    assert "demo history built" in shown
    hints = [h for h in shown.split("\nTry:\n", 1)[1].splitlines() if h.strip()]
    assert hints and all(h.startswith("  .venv/bin/surreal-store ") for h in hints), hints
    for hint in hints:
        walk.sh(hint.strip(), env=walk.env)  # as printed, in the same shell: no activation
    # The values the reader puts in the README's synopsis lines, from what the demo showed:
    # the ids of its hint, the first commit of its log.
    said = {h.split()[1]: h.split()[-1] for h in hints}
    commit = re.search(r"commit log \(main\).*?\b([0-9a-f]{12})\b", shown, flags=re.S)
    assert commit is not None, shown
    values.update(
        TEXT="'Kyoto hotel'",
        MEMORY=said["lineage"],
        SOURCE=said["impact"],
        DECISION=said["why"],
        COMMIT=commit.group(1),
        RUN="demo-run-1",
        AGENT="trip-planner",
        NAME="'the user'",  # the demo's graph entity
    )
