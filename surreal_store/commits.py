"""Agent-state commits: immutable snapshots in a DAG, and the questions asked of it.

A commit's id is the SHA-256 of a collision-proof encoding of its logic hash (code), state hash
(the digest of its state's canonical JSON), environment hash and ordered parents. Committing
the same content on the same parents again returns the existing commit.

Every commit carries a ``generation`` (1 + the highest generation of its parents, checked by
the database), so sorting by generation is a topological order: ``log`` and the ancestry
queries walk the graph 256 levels per query (the engine's recursion cap) and know which commits
are final after each page.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from . import branches as _branches
from ._api import public
from ._errors import (
    MergeConflictError,
    NotFoundError,
    QueryError,
    ResultError,
    ValidationError,
)
from ._executor import Executor, present
from ._ids import commit_key
from ._types import Key, Model, RecordId
from ._types import canonical_json as _canonical_json

__all__ = [
    "MISSING_VALUE",
    "UNSET",
    "Commit",
    "Diff",
    "Resolver",
    "ancestors",
    "canonical_json",
    "children",
    "commit",
    "commit_id",
    "descendants",
    "diff",
    "diff_states",
    "get",
    "get_state",
    "is_ancestor",
    "log",
    "merge",
    "merge_base",
    "merge_bases",
    "merge_states",
    "state_hash",
]

_PAGE_DEPTH: Final = 256  # the engine's recursion cap per query


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()
"""Marks an argument as not given (``None`` is a meaningful value for ``expected_head``)."""


CommitKey = Key


class Commit(Model):
    """An immutable commit. ``id`` and ``parents`` are 64-hex commit ids."""

    model_config = ConfigDict(frozen=True)

    id: CommitKey
    parents: list[CommitKey]
    generation: int
    message: str
    author: str
    branch: str | None = None
    created_at: dt.datetime
    state_hash: str
    logic_hash: str | None = None
    env_hash: str | None = None


# created_at travels as text: the SDK's datetime decoding is the costliest part of reading a
# page of history, and pydantic parses RFC 3339 text far faster (docs/design.md).
_FIELDS = (
    "id, parents, generation, message, author, branch, <string>created_at AS created_at, "
    "state_hash, logic_hash, env_hash"
)


# -- identity ------------------------------------------------------------------------------------


@public
def canonical_json(state: Any) -> str:
    """The canonical JSON text of ``state``: sorted keys, no insignificant whitespace. A state
    that would not read back exactly (a key that is not a string, a tuple) is refused."""
    return _canonical_json(state, what="state")


@public
def state_hash(state: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of ``state``."""
    return hashlib.sha256(canonical_json(state).encode("utf-8")).hexdigest()


@public
def commit_id(
    *,
    state_hash: str,
    logic_hash: str | None = None,
    env_hash: str | None = None,
    parents: Sequence[str] = (),
) -> str:
    """The id of a commit: SHA-256 over its components, each length-prefixed and tagged as
    present or absent, so ``("ab", "cd")`` and ``("a", "bcd")`` differ and an absent hash
    differs from the string ``"none"``."""
    h = hashlib.sha256(b"surreal-store/commit/v1\n")
    for part in (logic_hash, state_hash, env_hash):
        _absorb(h, part)
    h.update(len(parents).to_bytes(8, "big"))
    for parent in parents:
        _absorb(h, parent)
    return h.hexdigest()


def _absorb(h: Any, value: str | None) -> None:
    if value is None:
        h.update(b"\x00")
    else:
        raw = value.encode("utf-8")
        h.update(b"\x01" + len(raw).to_bytes(8, "big") + raw)


def _rid(key: str) -> RecordId:
    return RecordId("commit", commit_key(key))


def _optional_hash(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{what} must be a non-empty string or None")
    return value


# -- writing -------------------------------------------------------------------------------------

# The write path is the stored function ``fn::commit`` (schema/008, 010 and 011): one
# statement, so one transaction, parsed once per store instead of once per commit. Values go in
# as plain strings (commit keys, not record ids): encoding record ids is a measurable share of
# a commit's cost, and so is each parameter sent (None values are left out). The parents go as
# 'commit:<key>' strings, which the function casts to record ids in one step. It returns the
# commit when it already existed, and otherwise only what the database decided (generation,
# created_at).
_COMMIT = "RETURN fn::commit($c);"


class _Written(BaseModel):
    """What ``fn::commit`` returns: the whole commit if it existed, else the database's part."""

    generation: int | None = None
    created_at: dt.datetime | None = None
    existing: Commit | None = None


@public(agents=False)
async def commit(
    db: Executor,
    *,
    state: Mapping[str, Any],
    message: str,
    author: str,
    branch: str = "main",
    parents: Sequence[str | Commit] | None = None,
    expected_head: str | _Unset | None = UNSET,
    logic_hash: str | None = None,
    env_hash: str | None = None,
) -> Commit:
    """Commit ``state`` on ``branch`` in one transaction: snapshot, commit, parent edges, and the
    branch head (created if the branch is new; the first branch becomes the default).

    ``parents`` defaults to the branch's head (read first); passing the parent ``Commit``
    objects (e.g. the previous call's result) saves the transaction from reading them.
    ``expected_head`` is a compare-and-swap on the branch head (``None``: the branch must not
    exist); left unset, the branch must be absent or at the first parent. A stale expectation raises
    :class:`StaleError` and writes nothing. The same content on the same parents returns the
    existing commit.
    """
    name = _branches.validate_name(branch)
    if not isinstance(state, Mapping):
        raise ValidationError(
            f"state must be a JSON object (a mapping), not {type(state).__name__}"
        )
    for label, text in (("message", message), ("author", author)):
        if not isinstance(text, str):
            raise ValidationError(f"{label} must be a string")
    logic = _optional_hash(logic_hash, "logic_hash")
    env = _optional_hash(env_hash, "env_hash")
    generation: int | None = None
    edge_kind: str | None = None
    if parents is None:
        head = await _branches.head(db, name=name)
        parent_keys = [head] if head else []
        if expected_head is UNSET:
            expected_head = head
    else:
        known = [p for p in parents if isinstance(p, Commit)]
        parent_keys = [
            p.id if isinstance(p, Commit) else commit_key(p, what="parent") for p in parents
        ]
        if parents and len(known) == len(parents):
            # The caller holds the parents: no need to read them again.
            generation = max(p.generation for p in known) + 1
            edge_kind = (
                "merge" if len(known) > 1 else "fork" if known[0].branch != name else "normal"
            )
        if len(set(parent_keys)) != len(parent_keys):
            raise ValidationError("a commit cannot list the same parent twice")
    check: Literal["exact", "first_parent"] = "first_parent"
    expected: str | None = parent_keys[0] if parent_keys else None
    if not isinstance(expected_head, _Unset):
        check = "exact"
        expected = commit_key(expected_head) if expected_head is not None else None
    text = canonical_json(dict(state))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    key = commit_id(state_hash=digest, logic_hash=logic, env_hash=env, parents=parent_keys)
    c = {
        "key": key,
        "parents": ["commit:" + p for p in parent_keys],
        "branch": name,
        "check": check,
        "expected": expected,
        "generation": generation,
        "edge_kind": edge_kind,
        "state_json": text,
        "state_hash": digest,
        "size": len(text.encode("utf-8")),
        "message": message,
        "author": author,
        "logic_hash": logic,
        "env_hash": env,
    }
    row = await db.query_required_single(
        _COMMIT, _Written, c={k: v for k, v in c.items() if v is not None}
    )
    if row.existing is not None:
        return row.existing
    if row.generation is None or row.created_at is None:
        raise ResultError("fn::commit returned neither a new nor an existing commit")
    # Every field is checked already: by this function or, for the database's part, by _Written.
    return Commit.model_construct(
        id=key,
        parents=parent_keys,
        generation=row.generation,
        message=message,
        author=author,
        branch=name,
        created_at=row.created_at,
        state_hash=digest,
        logic_hash=logic,
        env_hash=env,
    )


# -- reading -------------------------------------------------------------------------------------

_GET = f"SELECT {_FIELDS} FROM ONLY $commit;"


@public(agents=False)
async def get(db: Executor, *, commit: str) -> Commit:
    """The commit with this id; ``NotFoundError`` if there is none."""
    rid = _rid(commit)
    return present(await db.query_single(_GET, Commit, commit=rid), f"no commit {rid.key}")


_STATE = "SELECT VALUE state_json FROM ONLY $snapshot;"


@public(agents=False)
async def get_state(db: Executor, *, commit: str) -> dict[str, Any]:
    """The state stored by the commit, exactly as committed."""
    key = commit_key(commit)
    text = present(
        await db.query_single(_STATE, str, snapshot=RecordId("snapshot", key)), f"no commit {key}"
    )
    state: dict[str, Any] = json.loads(text)
    return state


# Pages of history travel as one JSON text of rows with plain-string ids, validated straight
# into Commits by pydantic in Rust: the SDK's pure-Python CBOR decoder would be most of the cost
# of a page, and building the models in Python (model_construct) after parsing a third of a log.
_ROW = (
    "record::id(id) AS id, array::map(parents, |$p| record::id($p)) AS parents, generation, "
    "message, author, branch, <string>created_at AS created_at, state_hash, logic_hash, env_hash"
)
_ROWS: TypeAdapter[list[Commit]] = TypeAdapter(list[Commit])


# A page of ancestry: the start commits and everything up to 256 levels above them.
_ANCESTRY_PAGE = f"""
RETURN encoding::json::encode((SELECT {_ROW} FROM array::union($from, array::flatten(
    (SELECT VALUE @.{{1..{_PAGE_DEPTH}+collect}}->child_of->commit FROM $from)
))));
"""
_FIRST_PARENT_PAGE = f"""
RETURN encoding::json::encode((SELECT {_ROW} FROM array::union($from, array::flatten(
    (SELECT VALUE @.{{1..{_PAGE_DEPTH}+collect}}->(child_of WHERE position = 0)->commit FROM $from)
))));
"""


@dataclass
class _Walk:
    """Commits gathered so far, and the frontier whose parents are not gathered yet."""

    seen: dict[str, Commit] = field(default_factory=dict)
    frontier: list[Commit] = field(default_factory=list)

    def settled(self) -> list[Commit]:
        """Gathered commits that no ungathered commit can precede, newest first.

        Every ungathered ancestor has a lower generation than some frontier commit, so
        commits at or above the frontier's highest generation are final."""
        floor = max((c.generation for c in self.frontier), default=0)
        done = [c for c in self.seen.values() if c.generation >= floor]
        return sorted(done, key=_newest_first)


def _newest_first(c: Commit) -> tuple[int, float, str]:
    return (-c.generation, -c.created_at.timestamp(), c.id)


async def _walk(
    db: Executor,
    starts: Iterable[str],
    *,
    first_parent: bool = False,
    enough: Callable[[_Walk], bool] | None = None,
) -> _Walk:
    """Gather the ancestry of ``starts`` (inclusive), one query per 256 levels."""
    walk = _Walk()
    query = _FIRST_PARENT_PAGE if first_parent else _ANCESTRY_PAGE
    start = [RecordId("commit", s) for s in starts]
    while start:
        try:
            text = await db.query_required_single(query, str, idempotent=True, **{"from": start})
        except QueryError:
            # A start that is no commit fails inside the page query; say which one it was.
            if not walk.seen:
                for s in start:
                    if await db.query_single(_GET, Commit, commit=s) is None:
                        raise NotFoundError(f"no commit {s.key}") from None
            raise
        try:
            rows = _ROWS.validate_json(text)
        except PydanticValidationError as exc:
            raise ResultError(f"a page of history did not parse: {exc}") from None
        for row in rows:
            walk.seen.setdefault(row.id, row)
        # Keys, not RecordIds: building (and checking) one per row costs a tenth of a log's time.
        missing = {str(s.key) for s in start}.difference(r.id for r in rows)
        if missing and len(walk.seen) == len(rows):
            raise NotFoundError(f"no commit {sorted(missing)[0]}")
        walk.frontier = [
            c
            for c in walk.seen.values()
            if any(p not in walk.seen for p in (c.parents[:1] if first_parent else c.parents))
        ]
        if enough is not None and enough(walk):
            break
        # The next page starts at the distinct missing parents, not at the frontier commits:
        # those are neighbours whose 256-level walks would overlap almost entirely.
        missing_parents = {
            p
            for c in walk.frontier
            for p in (c.parents[:1] if first_parent else c.parents)
            if p not in walk.seen
        }
        start = [RecordId("commit", p) for p in sorted(missing_parents)]
    return walk


_DEFAULT_HEAD = "SELECT VALUE head FROM branch WHERE is_default = true LIMIT 1;"


@public(agents=False)
async def log(
    db: Executor,
    *,
    commit: str | None = None,
    branch: str | None = None,
    limit: int | None = None,
    first_parent: bool = False,
) -> list[Commit]:
    """History from ``commit`` (or the head of ``branch``; with neither, of the default
    branch): every ancestor once, each child before its parents, newest first.
    ``first_parent`` follows only first parents. A store with nothing committed yet has no
    default branch, and its history is empty; a ``branch`` named but missing is
    :class:`NotFoundError`."""
    if limit is not None and limit < 0:
        raise ValidationError("limit must be >= 0")
    if commit is None and branch is None:
        default = await db.query_single(_DEFAULT_HEAD, RecordId)
        if default is None:
            return []
        commit = str(default.key)
    start = await _resolve(db, commit=commit, branch=branch)
    if limit == 0:
        return []

    def enough(w: _Walk) -> bool:
        return limit is not None and len(w.settled()) >= limit

    walk = await _walk(db, [start], first_parent=first_parent, enough=enough)
    ordered = walk.settled()
    return ordered if limit is None else ordered[:limit]


@public(agents=False)
async def ancestors(db: Executor, *, commit: str, limit: int | None = None) -> list[Commit]:
    """All ancestors of ``commit`` (excluding it), children before parents."""
    history = await log(db, commit=commit, limit=None if limit is None else limit + 1)
    return [c for c in history if c.id != commit_key(commit)][:limit]


_DESCENDANT_PAGE = f"""
SELECT {_FIELDS}, <-child_of.in AS children FROM array::flatten(
    (SELECT VALUE @.{{1..{_PAGE_DEPTH}+collect}}<-child_of<-commit FROM $from)
);
"""


class _WithChildren(Commit):
    children: list[CommitKey] = Field(default_factory=list)


@public(agents=False)
async def descendants(db: Executor, *, commit: str) -> list[Commit]:
    """All descendants of ``commit`` (excluding it), parents before children (oldest first)."""
    root = (await get(db, commit=commit)).id
    seen: dict[str, _WithChildren] = {}
    start = [RecordId("commit", root)]
    while start:
        for row in await db.query(
            _DESCENDANT_PAGE, _WithChildren, idempotent=True, **{"from": start}
        ):
            seen.setdefault(row.id, row)
        start = [
            RecordId("commit", c.id)
            for c in seen.values()
            if any(child not in seen for child in c.children)
        ]
    found = [Commit.model_validate(c.model_dump(exclude={"children"})) for c in seen.values()]
    return sorted(found, key=lambda c: (c.generation, c.created_at.timestamp(), c.id))


_CHILDREN = f"SELECT {_FIELDS} FROM array::distinct($commit<-child_of<-commit);"


@public(agents=False)
async def children(db: Executor, *, commit: str) -> list[Commit]:
    """The direct children of ``commit``."""
    rows = await db.query(_CHILDREN, Commit, commit=_rid(commit))
    return sorted(rows, key=lambda c: (c.created_at.timestamp(), c.id))


_GENERATIONS = "SELECT id, generation FROM $ids;"


class _Generation(BaseModel):
    id: CommitKey
    generation: int


@public(agents=False)
async def is_ancestor(db: Executor, *, ancestor: str, descendant: str) -> bool:
    """Whether ``ancestor`` is ``descendant`` or one of its ancestors."""
    a, d = commit_key(ancestor), commit_key(descendant)
    rows = {
        r.id: r.generation
        for r in await db.query(_GENERATIONS, _Generation, ids=[_rid(a), _rid(d)])
    }
    for key in (a, d):
        if key not in rows:
            raise NotFoundError(f"no commit {key}")
    if a == d:
        return True
    if rows[a] >= rows[d]:
        return False

    def decided(w: _Walk) -> bool:
        # Found, or every ungathered commit is below the ancestor's generation.
        return a in w.seen or all(f.generation <= rows[a] for f in w.frontier)

    walk = await _walk(db, [d], enough=decided)
    return a in walk.seen


@public(agents=False)
async def merge_bases(db: Executor, *, a: str, b: str) -> list[Commit]:
    """The best common ancestors of ``a`` and ``b``: common ancestors that are not ancestors
    of other common ancestors (one in most histories; several after criss-cross merges)."""
    left = await _walk(db, [commit_key(a)])
    right = await _walk(db, [commit_key(b)])
    common = left.seen.keys() & right.seen.keys()
    # Anything reachable from a common ancestor is itself common, and not a best one.
    below: set[str] = set()
    stack = [p for c in common for p in left.seen[c].parents]
    while stack:
        key = stack.pop()
        if key in below:
            continue
        below.add(key)
        stack.extend(left.seen[key].parents)
    best = [left.seen[c] for c in common - below]
    return sorted(best, key=_newest_first)


@public(agents=False)
async def merge_base(db: Executor, *, a: str, b: str) -> Commit | None:
    """The best common ancestor of ``a`` and ``b`` (highest generation), or ``None``."""
    bases = await merge_bases(db, a=a, b=b)
    return bases[0] if bases else None


async def _resolve(db: Executor, *, commit: str | None, branch: str | None) -> str:
    if (commit is None) == (branch is None):
        raise ValidationError("give exactly one of commit= or branch=")
    if commit is not None:
        return commit_key(commit)
    assert branch is not None
    return (await _branches.get(db, name=branch)).head


# -- diff and merge ------------------------------------------------------------------------------

_MISSING: Final = object()


@dataclass(frozen=True)
class Diff:
    """Paths (JSON Pointers, RFC 6901) that differ between two states. Objects are compared
    key by key; any other value (lists included) is compared whole."""

    added: dict[str, Any] = field(default_factory=dict)
    removed: dict[str, Any] = field(default_factory=dict)
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def _pointer(path: tuple[str, ...]) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in path)


@public
def diff_states(a: Mapping[str, Any], b: Mapping[str, Any]) -> Diff:
    """The structured difference from state ``a`` to state ``b``."""
    out = Diff()

    def walk(x: Any, y: Any, path: tuple[str, ...]) -> None:
        if isinstance(x, Mapping) and isinstance(y, Mapping):
            for k in sorted(x.keys() | y.keys()):
                walk(x.get(k, _MISSING), y.get(k, _MISSING), (*path, str(k)))
        elif x is _MISSING:
            out.added[_pointer(path)] = y
        elif y is _MISSING:
            out.removed[_pointer(path)] = x
        elif x != y or type(x) is not type(y):
            out.changed[_pointer(path)] = (x, y)

    walk(a, b, ())
    return out


@public(agents=False)
async def diff(db: Executor, *, a: str, b: str) -> Diff:
    """The structured difference between the states of commits ``a`` and ``b``."""
    return diff_states(await get_state(db, commit=a), await get_state(db, commit=b))


Resolver = Callable[[str, Any, Any, Any], Any]
"""``resolver(path, base, ours, theirs) -> value`` for a conflicting path (``MISSING_VALUE``
stands for an absent key, and may be returned to drop it)."""
MISSING_VALUE: Final = _MISSING


@public
def merge_states(
    base: Mapping[str, Any],
    ours: Mapping[str, Any],
    theirs: Mapping[str, Any],
    *,
    resolve: Literal["fail", "ours", "theirs"] | Resolver = "fail",
) -> dict[str, Any]:
    """Three-way merge of states: a path changed on one side takes that side's value; changed
    identically on both, that value; changed differently, ``resolve`` decides (``"fail"``
    raises :class:`MergeConflictError` naming every conflicting path)."""
    conflicts: list[str] = []

    def pick(path: tuple[str, ...], b: Any, o: Any, t: Any) -> Any:
        if o == t and type(o) is type(t):
            return o
        if b == o and type(b) is type(o):
            return t
        if b == t and type(b) is type(t):
            return o
        if all(isinstance(v, Mapping) for v in (o, t)):
            bb = b if isinstance(b, Mapping) else {}
            merged = {}
            for k in sorted(o.keys() | t.keys()):
                v = pick(
                    (*path, str(k)), bb.get(k, _MISSING), o.get(k, _MISSING), t.get(k, _MISSING)
                )
                if v is not _MISSING:
                    merged[k] = v
            return merged
        if resolve == "ours":
            return o
        if resolve == "theirs":
            return t
        if resolve == "fail":
            conflicts.append(_pointer(path))
            return o
        return resolve(_pointer(path), b, o, t)

    result = pick((), base, ours, theirs)
    if conflicts:
        raise MergeConflictError(
            f"{len(conflicts)} conflicting path(s): {', '.join(conflicts[:10])}", paths=conflicts
        )
    return dict(result) if isinstance(result, Mapping) else {}


@public(agents=False)
async def merge(
    db: Executor,
    *,
    into: str,
    commit: str | None = None,
    branch: str | None = None,
    message: str | None = None,
    author: str,
    resolve: Literal["fail", "ours", "theirs"] | Resolver = "fail",
) -> Commit:
    """Merge ``commit`` (or the head of ``branch``) into branch ``into`` as a merge commit with
    two parents (ours first), in one transaction guarded by the head it merged.

    If the other side is already contained in ``into``, nothing changes and the head of
    ``into`` is returned.
    """
    theirs = await _resolve(db, commit=commit, branch=branch)
    ours = (await _branches.get(db, name=into)).head
    # One walk of both histories answers both questions: if the other side is already contained
    # in ours, it is itself a best common ancestor.
    bases = await merge_bases(db, a=ours, b=theirs)
    if any(b.id == theirs for b in bases):
        return await get(db, commit=ours)
    base_state = await get_state(db, commit=bases[0].id) if bases else {}
    merged = merge_states(
        base_state,
        await get_state(db, commit=ours),
        await get_state(db, commit=theirs),
        resolve=resolve,
    )
    return await commit_(
        db,
        state=merged,
        parents=[ours, theirs],
        expected_head=ours,
        branch=into,
        message=message or f"merge {branch or theirs[:12]} into {into}",
        author=author,
    )


commit_ = commit  # ``merge`` takes a ``commit=`` argument that shadows the function
