"""Every Python block of the README and of the pages in ``docs/`` runs as shown, each in a fresh
store: a block that calls ``anyio.run`` as a script (in a fresh working directory), the others
as notebook cells (top-level ``await``). Their claims about results are ``assert`` statements,
so a block that runs is true."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# The README first, then the pages it links (what left the README for docs/ still runs).
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]


def _python_blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(), flags=re.M | re.S)


_PAGE_BLOCKS = [
    (f"{page.stem}-block{n}", block)
    for page in PAGES
    for n, block in enumerate(_python_blocks(page), 1)
]
_BLOCKS = [block for _, block in _PAGE_BLOCKS]


def test_the_readme_has_python_blocks() -> None:
    assert len(_python_blocks(README)) >= 4


@pytest.mark.parametrize("number", range(len(_BLOCKS)), ids=[i for i, _ in _PAGE_BLOCKS])
def test_a_readme_block_runs_as_shown(number: int, tmp_path: Path) -> None:
    source = _BLOCKS[number]
    namespace: dict[str, object] = {"__name__": "__main__"}
    here = Path.cwd()
    os.chdir(tmp_path)  # a script's relative store path lands here
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            if "anyio.run(" in source:
                exec(compile(source, _PAGE_BLOCKS[number][0], "exec"), namespace)
            else:
                code = compile(
                    source,
                    _PAGE_BLOCKS[number][0],
                    "exec",
                    flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                )
                result = eval(code, namespace)
                if asyncio.iscoroutine(result):
                    asyncio.run(result)
    finally:
        os.chdir(here)


_CELLS = [b for b in _BLOCKS if "anyio.run(" not in b]
_SCRIPTS = [(name, b) for name, b in _PAGE_BLOCKS if "anyio.run(" in b]


def test_the_scripts_run_one_after_another_in_one_folder(tmp_path: Path) -> None:
    """A reader runs the README's scripts and then the docs' in one folder, and then the
    README's again: none collides with what another, or its own last run, left in its store
    (as two sharing a store path and a thread id would)."""
    here = Path.cwd()
    os.chdir(tmp_path)
    again = [(name, source) for name, source in _SCRIPTS if name.startswith(f"{README.stem}-")]
    try:
        for name, source in [*_SCRIPTS, *again]:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(source, name, "exec"), {"__name__": "__main__"})
    finally:
        os.chdir(here)


def test_no_cell_has_a_blank_line_inside_a_block() -> None:
    """At the ``python -m asyncio`` prompt a blank line ends an indented block, so a cell with
    one fails there with IndentationError (pasted, as the README suggests)."""
    for number, cell in enumerate(_CELLS, 1):
        lines = cell.splitlines()
        for i, line in enumerate(lines[:-1]):
            assert line.strip() or not lines[i + 1][:1].isspace(), (number, lines[i + 1])


def test_the_cells_pasted_at_the_asyncio_prompt(tmp_path: Path) -> None:
    """Every cell, in order, pasted into one ``python -m asyncio`` session as a person would
    (each followed by the blank line that runs it): no error of any kind at the prompt."""
    import subprocess
    import sys

    stdin = "".join(
        f"print('-- cell {n}')\n{cell.rstrip()}\n\n" for n, cell in enumerate(_CELLS, 1)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURREAL_STORE_")}
    env.update(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "xdg"))
    done = subprocess.run(
        [sys.executable, "-m", "asyncio"],
        input=stdin + "print('-- end')\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("-- cell") == len(_CELLS) and "-- end" in done.stdout, done.stdout
    problems = [
        line
        for line in done.stderr.splitlines()
        if "Error" in line or "Traceback" in line or "Exception" in line
    ]
    assert not problems, done.stderr


def test_the_readme_links_every_page_of_docs() -> None:
    text = README.read_text()
    unlinked = [p.name for p in PAGES[1:] if f"](docs/{p.name})" not in text]
    assert not unlinked, unlinked
