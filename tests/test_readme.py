"""Every Python block of the README runs as shown, each in a fresh store: a block that calls
``anyio.run`` as a script (in a fresh working directory), the others as notebook cells (top-level
``await``). Their claims about results are ``assert`` statements, so a block that runs is true."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.M | re.S)


def test_the_readme_has_python_blocks() -> None:
    assert len(_BLOCKS) >= 4


@pytest.mark.parametrize("number", range(len(_BLOCKS)), ids=lambda n: f"block{n + 1}")
def test_a_readme_block_runs_as_shown(number: int, tmp_path: Path) -> None:
    source = _BLOCKS[number]
    namespace: dict[str, object] = {"__name__": "__main__"}
    here = Path.cwd()
    os.chdir(tmp_path)  # a script's relative store path lands here
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            if "anyio.run(" in source:
                exec(compile(source, f"README block {number + 1}", "exec"), namespace)
            else:
                code = compile(
                    source,
                    f"README block {number + 1}",
                    "exec",
                    flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                )
                result = eval(code, namespace)
                if asyncio.iscoroutine(result):
                    asyncio.run(result)
    finally:
        os.chdir(here)
