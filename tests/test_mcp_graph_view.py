"""The MCP graph tools' in-memory view (``surreal_store.mcp._graph_view``): its answers equal
the reference server's algorithm written plainly (a loop over entities, as its source has it),
for random graphs and queries, across replacements."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from surreal_store.mcp._graph_view import GraphView, Relation, ViewEntity, graph_text

ALPHABET = ["a", "A", "b", "Σ", "σ", "ς", "İ", "i", "\u0307", " ", "\x00", "é", "😀"]
text = st.lists(st.sampled_from(ALPHABET), max_size=6).map("".join)


def plain_search(view: GraphView, query: str) -> dict[str, Any]:
    q = query.lower()
    names = {
        e.name
        for e in view.entities.values()
        if q in e.name.lower() or q in e.type.lower() or any(q in o.lower() for o in e.observations)
    }
    return plain_around(view, names)


def plain_around(view: GraphView, names: set[str]) -> dict[str, Any]:
    entities = sorted((e for e in view.entities.values() if e.name in names), key=lambda e: e.order)
    rels = sorted(
        (r for r in view.relations if r[0] in names or r[1] in names),
        key=lambda r: (view.relations[r], r),
    )
    return {
        "entities": [e.out() for e in entities],
        "relations": [{"from": a, "to": b, "relationType": t} for a, b, t in rels],
    }


@st.composite
def batches(draw: st.DrawFn) -> list[tuple[list[str], list[ViewEntity], list[Relation]]]:
    out = []
    for step in range(draw(st.integers(1, 4))):
        names = draw(st.lists(text, max_size=5, unique=True))
        entities = [
            ViewEntity(n, draw(text), draw(st.lists(text, max_size=3)), (step, i))
            for i, n in enumerate(names)
        ]
        # Relations join entities of the batch (facts join entities that exist).
        end = st.sampled_from(names) if names else st.nothing()
        rels = draw(
            st.lists(st.tuples(end, end, st.sampled_from("rs")), max_size=4 if names else 0)
        )
        touched = draw(st.lists(text, max_size=2))
        out.append(([*names, *touched], entities, rels))
    return out


@settings(max_examples=150, deadline=None)
@given(
    steps=batches(),
    queries=st.lists(text, min_size=1, max_size=5),
    index_after=st.sampled_from([0, 1, 1000]),
)
def test_search_and_open_equal_the_plain_algorithm(
    steps: list[tuple[list[str], list[ViewEntity], list[Relation]]],
    queries: list[str],
    index_after: int,
) -> None:
    """Both ways of searching (the scan, and the trigram index once the graph is calm)."""
    view = GraphView(index_after=index_after)
    for n, (names, entities, rels) in enumerate(steps):
        view.replace(names, entities, [(r, (n, i)) for i, r in enumerate(rels)])
        for q in queries:
            assert view.search_nodes(q) == plain_search(view, q), q
            assert view.open_nodes([q, *names[:1]]) == plain_around(
                view, {x for x in (q, *names[:1]) if x in view.entities}
            )
        data, _ = view.read_graph()
        assert data == plain_around(view, set(view.entities))
        # Every relation the view holds is indexed under both of its ends.
        for r in view.relations:
            assert r in view.touching[r[0]] and r in view.touching[r[1]]


plain_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=6)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**9), 10**9) | plain_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(plain_text, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_the_text_is_json_dumps_with_an_indent_of_two(value: Any) -> None:
    """The reference's text is ``JSON.stringify(x, null, 2)``: the same as ``json.dumps`` with
    ``indent=2, ensure_ascii=False`` (tests/test_mcp_reference.py compares with the reference's
    own text); the view writes it with pydantic-core's serializer."""
    import json

    assert graph_text(value) == json.dumps(value, indent=2, ensure_ascii=False)


def test_the_trigram_index_only_narrows() -> None:
    """An entity holding every trigram of the query but not the query is no match."""
    view = GraphView(index_after=0)
    view.replace(
        (),
        [ViewEntity("one", "t", ["abcx", "zbcd"], (0,)), ViewEntity("two", "t", ["xabcdx"], (1,))],
        [],
    )
    assert [e["name"] for e in view.search_nodes("ABCD")["entities"]] == ["two"]
    assert [e["name"] for e in view.search_nodes("bcd")["entities"]] == ["one", "two"]
    assert view.search_nodes("abcdz")["entities"] == []
