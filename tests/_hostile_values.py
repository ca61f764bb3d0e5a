"""Hostile and unlucky values for the framework doors' hypothesis walks (LangGraph's saver,
LangChain's vector store): lone surrogates, NUL, huge integers, NaN, injection-shaped text,
keys that are not strings, objects that are not data."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def hostile_texts(*extra: str) -> st.SearchStrategy[str]:
    """Short texts, lone surrogates, and ``extra`` (table names, parameters of the door)."""
    return st.one_of(
        st.text(max_size=6),
        st.text(st.characters(categories=["Cs"]), min_size=1, max_size=2),
        st.sampled_from(["", "\x00", "⟨⟩", *extra]),
    )


def hostile_values(text: st.SearchStrategy[str], *more: st.SearchStrategy[Any]) -> Any:
    """Any hostile value: scalars of every kind, ``text``, small lists and dicts of it."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True),
        st.binary(max_size=3),
        text,
        st.lists(text, max_size=3),
        st.dictionaries(st.one_of(text, st.integers()), text, max_size=2),
        st.just(object()),
        *more,
    )


# Scopes and names that look like "foo" to a prefix, a pattern, a C string or a reader.
LOOK_ALIKES = [
    "foo",
    "foobar",
    "fo",
    "fo%",
    "fo_",
    "f%",
    "foo\x00",
    "foo\x00bar",
    "FOO",
    "foo ",
    " foo",
    "f\u03bf\u03bf",  # Greek omicrons
    "ｆｏｏ",  # full-width
    "foo/bar",
    "foo:bar",
    "foo.",
    "foo*",
    ".*",
]
