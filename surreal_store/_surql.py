"""SurrealQL text helpers: statement splitting, a conservative read/write classifier, checksums.

This is not a parser. It knows just enough of the lexical grammar (strings, escaped identifiers,
comments, brackets) to find top-level ``;`` and the words outside literals, which is what the
client needs to name a failing statement, decide whether a query may run concurrently, and
decide whether a lost write conflict may be replayed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "QueryShape",
    "as_array",
    "checksum",
    "indexed_in",
    "normalise",
    "role_of",
    "shape",
    "split_statements",
    "validate_identifier",
]

# Statements that change records or definitions (what a read-only session may never send).
_CHANGE_WORDS = frozenset(
    {
        "CREATE",
        "UPDATE",
        "UPSERT",
        "DELETE",
        "RELATE",
        "INSERT",
        "DEFINE",
        "REMOVE",
        "ALTER",
        "REBUILD",
        "ACCESS",
    }
)
# Anything that can change data or definitions. A word that is only a field name ("update")
# makes a read look like a write: that costs a little concurrency, never correctness.
_WRITE_WORDS = _CHANGE_WORDS | {"KILL", "LIVE", "BEGIN", "COMMIT", "CANCEL", "IMPORT", "OPTION"}
_TXN_WORDS = frozenset({"BEGIN", "COMMIT", "CANCEL"})
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_OPEN = {"{": "}", "(": ")", "[": "]"}


@dataclass(frozen=True, slots=True)
class QueryShape:
    """What the client needs to know about a query's text."""

    statements: tuple[str, ...]
    """Top-level statements, stripped, without their ``;``."""
    keywords: tuple[str, ...]
    """The first word of each statement, upper-cased."""
    read_only: bool
    """No statement can write (conservatively: a custom function ``fn::`` counts as a write)."""
    atomic: bool
    """One statement, or one ``BEGIN ... COMMIT`` block: if it loses a conflict, nothing of it
    was applied, so replaying it is safe."""
    writes: frozenset[str] = frozenset()
    """The statement words that change records or definitions (``CREATE``, ``DEFINE``...)
    occurring anywhere in it, nested ones included."""


def _scan(text: str) -> tuple[list[str], set[str], bool]:
    """Split ``text`` on top-level ``;``; return the statements, the bare words, and whether
    a ``fn::`` call occurs. Words inside strings, comments and escaped identifiers are skipped."""
    statements: list[str] = []
    words: set[str] = set()
    calls_fn = False
    depth: list[str] = []
    start = 0
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c in "'\"":
            i += 1
            while i < n and text[i] != c:
                i += 2 if text[i] == "\\" else 1
            i += 1
        elif c == "`":
            end = text.find("`", i + 1)
            i = n if end < 0 else end + 1
        elif c == "⟨":
            end = text.find("⟩", i + 1)
            i = n if end < 0 else end + 1
        elif c == "#" or (c in "-/" and text.startswith(c * 2, i)):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif c == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c in _OPEN:
            depth.append(_OPEN[c])
            i += 1
        elif depth and c == depth[-1]:
            depth.pop()
            i += 1
        elif c == ";" and not depth:
            statements.append(text[start:i])
            i += 1
            start = i
        elif c.isalpha() or c == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            if word == "fn" and text.startswith("::", j):
                calls_fn = True
            words.add(word.upper())
            i = j
        else:
            i += 1
    statements.append(text[start:])
    return statements, words, calls_fn


def _strip_comments(statement: str) -> str:
    """``statement`` without leading comments and surrounding whitespace; the rest verbatim."""
    text = statement.strip()
    while text:
        if text.startswith(("--", "//", "#")):
            end = text.find("\n")
            text = "" if end < 0 else text[end + 1 :].strip()
        elif text.startswith("/*"):
            end = text.find("*/")
            text = "" if end < 0 else text[end + 2 :].strip()
        else:
            break
    return text


def split_statements(text: str) -> list[str]:
    """The top-level statements of ``text`` (comment-only fragments dropped)."""
    return list(shape(text).statements)


@lru_cache(maxsize=2048)
def shape(text: str) -> QueryShape:
    """Analyse a query's text (cached: domain queries are constants)."""
    raw, words, calls_fn = _scan(text)
    statements = tuple(s for s in (_strip_comments(part) for part in raw) if s)
    keywords = tuple(_first_word(s) for s in statements)
    read_only = not calls_fn and not (words & _WRITE_WORDS)
    atomic = len(statements) <= 1 or (
        keywords[0] == "BEGIN"
        and keywords[-1] == "COMMIT"
        and sum(1 for k in keywords if k in _TXN_WORDS) == 2
    )
    return QueryShape(
        statements=statements,
        keywords=keywords,
        read_only=read_only,
        atomic=atomic,
        writes=frozenset(words & _CHANGE_WORDS),
    )


def _first_word(statement: str) -> str:
    match = re.match(r"[A-Za-z_]+", statement)
    return match.group(0).upper() if match else ""


_ROLES = re.compile(r"\bROLES ([A-Z, ]+?)(?: DURATION|$)")


def role_of(ddl: str) -> str | None:
    """The roles of a ``DEFINE USER`` statement as the engine prints it (``VIEWER``)."""
    found = _ROLES.search(ddl)
    return found.group(1).strip() if found else None


def normalise(text: str) -> str:
    """Text as checksummed: ``\\n`` line endings, no trailing whitespace, one final newline."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    body = "\n".join(line.rstrip() for line in lines).strip("\n")
    return body + "\n"


def checksum(text: str) -> str:
    """SHA-256 (hex) of the normalised text."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()


def validate_identifier(name: str, *, what: str = "identifier") -> str:
    """Return ``name`` if it is a plain SurrealQL identifier, else raise ``ValidationError``.

    Identifiers (table, field, index names) cannot be passed as ``$parameters``; the few places
    that must put one into query text accept only this conservative form.
    """
    from ._errors import ValidationError

    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValidationError(f"invalid {what} {name!r}: use letters, digits and _ only")
    return name


# The most values an ``IN $list`` condition may hold and still be answered by an index: past
# it the engine's planner scans the whole table (docs/engine-notes.md, "IN past 32 values").
INDEXED_IN_MAX = 32


def indexed_in(values: str, select: str, item: str = "$part") -> str:
    """An expression answering ``select`` (whose condition is ``... IN {item}``) for every
    value of the list ``values``, 32 values a time so that an index answers each part; the
    parts' answers flattened into one array (a part's one row may come as that row, none as
    NONE: see :func:`as_array`)."""
    return f"array::flatten(array::clump({values}, {INDEXED_IN_MAX}).map(|{item}| ({select})))"


def as_array(var: str) -> str:
    """A statement making ``var`` a list: a SELECT over a computed or filtered array, or one
    whose WHERE an index answers, gives one row as that row and none as NONE (docs/design.md,
    "Engine notes")."""
    return (
        f"LET {var} = IF type::is_array({var}) {{ {var} }} "
        f"ELSE IF {var} = NONE {{ [] }} ELSE {{ [{var}] }};\n"
    )
