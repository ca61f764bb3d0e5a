"""Checking a model-written query (LangChain's ``GraphStore.query``) before it is sent: its
parameters' names, and, unless writes are allowed, that it only reads.

The engine has no read-only transaction (``BEGIN`` takes no mode) and the embedded engine no
second session to sign in as a viewer on the same connection, so the text is checked here. A
tokenizer that reads strings, identifiers and comments as the engine does (checked against it
in tests/test_graph_langchain.py) looks at every word outside them, in every statement and
subquery, and refuses:

- every statement keyword that writes, defines or changes the session (:data:`WRITE_WORDS`),
  wherever it stands (``LET $x = (DELETE ...)``, ``SELECT * FROM (UPDATE ...)``, a field of
  that name: a false refusal is the price of never missing one);
- every user function (``fn::...``: a function may write) and the built-in families with
  effects outside the query (:data:`EFFECT_FAMILIES`: ``http::``, ``file::``, ``api::``,
  ``sequence::``...).

Where the text is ambiguous (an unterminated string, comment or identifier; a backslash in a
``⟨...⟩`` identifier) it is refused too. Line comments end at any line break the engine
might honour, so a comment never hides more than the engine would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .._errors import ValidationError
from .._types import check_text

__all__ = [
    "EFFECT_FAMILIES",
    "WRITE_WORDS",
    "WriteQueryError",
    "check_read_only",
    "checked_query",
]

WRITE_WORDS: Final = frozenset(
    {
        "ACCESS", "ALTER", "BEGIN", "CANCEL", "COMMIT", "CREATE", "DEFINE", "DELETE", "INSERT",
        "KILL", "LIVE", "OPTION", "REBUILD", "RELATE", "REMOVE", "SLEEP", "UPDATE", "UPSERT",
        "USE",
    }
)  # fmt: skip
"""Statement keywords (any case) a read-only query never holds."""

EFFECT_FAMILIES: Final = frozenset({"fn", "http", "file", "api", "sequence", "mod", "silo"})
"""Function families (``family::name``) whose calls may write or reach outside the query."""

_LINE_BREAKS: Final = frozenset("\n\r\x0b\x0c\x85\u2028\u2029")
# The engine's words are ASCII: any other character ends one here, so no letter the engine
# would read as a separator can join two words into one this check passes.
_WORD: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


# The keyword arguments of Store.query itself: a parameter of that name would be taken for
# them.
_NOT_PARAMS: Final = frozenset({"idempotent", "timeout_s"})


class WriteQueryError(ValidationError):
    """A query refused by a read-only graph store before it was sent: ``word`` is what it
    holds that could write (a keyword, ``fn::``), or what could not be read safely."""

    def __init__(self, message: str, word: str) -> None:
        super().__init__(message)
        self.word = word


def _refuse(word: str, why: str) -> WriteQueryError:
    return WriteQueryError(
        f"this graph store only reads (allow_writes=False): the query {why} "
        f"(refused at {word!r}); nothing was sent",
        word,
    )


def _skip_quoted(text: str, i: int, close: str, what: str) -> int:
    """The index after the quoted run that opens at ``i`` (backslash escapes the next
    character, as the engine reads strings and backtick identifiers)."""
    j = i + 1
    while j < len(text):
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c == close:
            return j + 1
        j += 1
    raise _refuse(text[i], f"has an unterminated {what}")


def _words(text: str) -> list[str]:
    """The query's words and ``::`` separators outside strings, identifiers in quotes and
    comments, in order (``$name`` parameters are left out: they are not keywords)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        two = text[i : i + 2]
        if c in "'\"":
            i = _skip_quoted(text, i, c, "string")
        elif c == "`":
            i = _skip_quoted(text, i, "`", "identifier")
        elif c == "\u27e8":  # ⟨identifier⟩: no escapes (the engine refuses \⟩)
            end = text.find("\u27e9", i + 1)
            if end < 0:
                raise _refuse(c, "has an unterminated identifier")
            if "\\" in text[i + 1 : end]:
                raise _refuse("\\", "has a backslash in a ⟨...⟩ identifier")
            i = end + 1
        elif two in ("--", "//") or c == "#":
            while i < n and text[i] not in _LINE_BREAKS:
                i += 1
        elif two == "/*":
            end = text.find("*/", i + 2)
            if end < 0:
                raise _refuse("/*", "has an unterminated comment")
            i = end + 2
        elif two == "::":
            out.append("::")
            i += 2
        elif c == "$":
            i += 1
            while i < n and text[i] in _WORD:
                i += 1
        elif c in _WORD:
            j = i
            while j < n and text[j] in _WORD:
                j += 1
            out.append(text[i:j])
            i = j
        else:
            i += 1
    return out


def check_read_only(text: str) -> None:
    """Raise :class:`WriteQueryError`, naming the word, unless ``text`` only reads."""
    words = _words(text)
    for k, word in enumerate(words):
        upper = word.upper()
        # A word after ``::`` names a function of a family (``array::insert``), never a
        # statement: the engine reads it as part of the path, spaces or comments between.
        if upper in WRITE_WORDS and (k == 0 or words[k - 1] != "::"):
            raise _refuse(upper, f"holds {upper}, which writes or changes the session")
        family = word.lower()
        if family == "fn" or (
            family in EFFECT_FAMILIES and k + 1 < len(words) and words[k + 1] == "::"
        ):
            raise _refuse(
                f"{family}::",
                f"calls {family}::..., a function that may write or reach outside the query",
            )


def checked_query(
    query: str, params: Mapping[str, Any] | None, *, allow_writes: bool
) -> dict[str, Any]:
    """``params`` as a new dict once ``query`` and its parameters' names are checked (and,
    unless ``allow_writes``, that ``query`` only reads); nothing is sent on a refusal."""
    check_text(query, "query")
    if not allow_writes:
        check_read_only(query)
    values = dict(params or {})
    for name in values:
        if not isinstance(name, str) or not name or not set(name) <= _WORD:
            raise ValidationError(f"a parameter's name is letters, digits and _, not {name!r}")
        if name in _NOT_PARAMS:
            raise ValidationError(f"the parameter name {name!r} is reserved; use another")
    return values
