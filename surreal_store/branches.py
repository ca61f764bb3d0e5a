"""Branches: named, movable heads of the commit graph.

The first branch created becomes the default; the default branch cannot be deleted (the
database refuses it, whoever asks).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from pydantic import ConfigDict

from ._api import public
from ._errors import ValidationError
from ._executor import Executor, present
from ._ids import commit_key
from ._types import Key, Model, RecordId

__all__ = [
    "Branch",
    "create",
    "delete",
    "fork",
    "get",
    "head",
    "list_all",
    "move",
    "set_default",
    "validate_name",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")


@public
def validate_name(name: str) -> str:
    """``name`` if it is a valid branch name (git-like), else ``ValidationError``."""
    if (
        not isinstance(name, str)
        or not _NAME.match(name)
        or ".." in name
        or "//" in name
        or name.endswith(("/", ".", ".lock"))
    ):
        raise ValidationError(
            f"invalid branch name {name!r}: letters, digits, '.', '_', '-', '/' "
            "(no '..', '//', or trailing '/', '.', '.lock')"
        )
    return name


class Branch(Model):
    model_config = ConfigDict(frozen=True)

    name: str
    head: Key
    is_default: bool
    created_at: dt.datetime
    updated_at: dt.datetime


_FIELDS = "name, head, is_default, created_at, updated_at"


def _rid(name: str) -> RecordId:
    return RecordId("branch", validate_name(name))


def _commit(key: str) -> RecordId:
    return RecordId("commit", commit_key(key))


_GET = f"SELECT {_FIELDS} FROM ONLY $branch;"


@public(agents=False)
async def get(db: Executor, *, name: str) -> Branch:
    """The branch called ``name``; ``NotFoundError`` if there is none."""
    return present(await db.query_single(_GET, Branch, branch=_rid(name)), f"no branch {name!r}")


_HEAD = "SELECT VALUE head FROM ONLY $branch;"


@public(agents=False)
async def head(db: Executor, *, name: str) -> str | None:
    """The commit id at the head of ``name``, or ``None`` if the branch does not exist."""
    value = await db.query_single(_HEAD, RecordId, branch=_rid(name))
    return None if value is None else str(value.key)


_LIST = f"SELECT {_FIELDS} FROM branch ORDER BY name;"


@public(agents=False)
async def list_all(db: Executor) -> list[Branch]:
    """Every branch, by name."""
    return await db.query(_LIST, Branch)


_CREATE = f"""
CREATE $branch SET name = $name, head = $head,
    is_default = $default OR count(SELECT id FROM branch WHERE is_default = true) = 0
RETURN {_FIELDS};
"""


@public(agents=False)
async def create(db: Executor, *, name: str, at: str, default: bool = False) -> Branch:
    """Create branch ``name`` at commit ``at``. ``AlreadyExistsError`` if it exists; the first
    branch becomes the default."""
    return await db.query_required_single(
        _CREATE, Branch, branch=_rid(name), name=name, head=_commit(at), default=default
    )


_MOVE = f"""
BEGIN;
LET $current = (SELECT VALUE head FROM ONLY $branch);
IF $current = NONE {{ THROW 'not_found: no branch ' + $name }};
IF $check AND $current != $expected {{
    THROW 'stale: branch ' + $name + ' is at ' + <string>$current + ', expected '
        + <string>$expected;
}};
UPDATE $branch SET head = $head;
SELECT {_FIELDS} FROM ONLY $branch;
COMMIT;
"""


@public(agents=False)
async def move(db: Executor, *, name: str, to: str, expected: str | None = None) -> Branch:
    """Point ``name`` at commit ``to``. With ``expected``, only if the head is still there
    (compare-and-swap; :class:`StaleError` otherwise, nothing written)."""
    return await db.query_required_single(
        _MOVE,
        Branch,
        branch=_rid(name),
        name=name,
        head=_commit(to),
        check=expected is not None,
        expected=_commit(expected) if expected is not None else None,
    )


_DELETE = """
BEGIN;
IF record::exists($branch) = false { THROW 'not_found: no branch ' + $name };
DELETE $branch;
COMMIT;
"""


@public(agents=False)
async def delete(db: Executor, *, name: str) -> None:
    """Delete branch ``name`` (its commits stay). The default branch is refused
    (``ConstraintError``); an unknown branch is ``NotFoundError``."""
    await db.execute(_DELETE, branch=_rid(name), name=name)


_SET_DEFAULT = f"""
BEGIN;
IF record::exists($branch) = false {{ THROW 'not_found: no branch ' + $name }};
UPDATE branch SET is_default = false WHERE is_default = true AND id != $branch;
UPDATE $branch SET is_default = true;
SELECT {_FIELDS} FROM ONLY $branch;
COMMIT;
"""


@public(agents=False)
async def set_default(db: Executor, *, name: str) -> Branch:
    """Make ``name`` the default branch (the previous default stops being it), atomically."""
    return await db.query_required_single(_SET_DEFAULT, Branch, branch=_rid(name), name=name)


_FORK = f"""
BEGIN;
IF record::exists($head) = false {{ THROW 'not_found: commit ' + <string>$head }};
FOR $n IN $names {{
    CREATE type::record('branch', $n) SET name = $n, head = $head, is_default = false;
}};
SELECT {_FIELDS} FROM $ids ORDER BY name;
COMMIT;
"""


@public(agents=False)
async def fork(db: Executor, *, commit: str, names: Sequence[str]) -> list[Branch]:
    """Create several branches at ``commit`` at once (all or none)."""
    checked = [validate_name(n) for n in names]
    if not checked or len(set(checked)) != len(checked):
        raise ValidationError("fork needs one or more distinct branch names")
    return await db.query(
        _FORK,
        Branch,
        head=_commit(commit),
        names=checked,
        ids=[RecordId("branch", n) for n in checked],
    )
