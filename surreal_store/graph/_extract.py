"""Extraction is pluggable: an :class:`Extractor` turns a text into entities and facts, and
:func:`ingest` stores the text as a memory and writes what was extracted from it, sourced from
that memory, in one transaction.

The store builds no extractor on a model. :class:`PatternExtractor` is a deterministic one (a
regular expression per predicate), for tests and for texts with a known shape;
``surreal_store.langchain.GraphTransformerExtractor`` wraps LangChain's ``LLMGraphTransformer``
(or anything with ``aconvert_to_graph_documents``).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, runtime_checkable

from pydantic import ConfigDict, Field

from .. import _facts
from .._api import public
from .._errors import ValidationError
from .._executor import Executor
from .._types import Model, RecordId, canonical_json, check_text, json_value
from ..memory import Embedder, Memory, NewMemory, memory_id
from ..memory._checks import check_tags
from ..memory._embedders import embed_texts
from ..memory._models import FIELDS as MEMORY_FIELDS
from ..memory._space import writing_space
from ._assert import ASSERT_FACTS_STATEMENTS, fact_ends, fact_rows
from ._entities import CREATE_ENTITIES_STATEMENTS, entity_row, entity_vectors
from ._models import DEFAULT_SCOPE, Entity, Fact, NewEntity, NewFact
from ._names import check_scope, plain
from ._sources import fact_source_params, parse_sources

__all__ = [
    "SOURCE_KIND",
    "Extraction",
    "Extractor",
    "Ingested",
    "Pattern",
    "PatternExtractor",
    "PreparedWrite",
    "created_entities",
    "ingest",
    "prepare_extraction",
    "write_body",
    "write_extraction",
    "write_prepared",
]

SOURCE_KIND: Final = "document"
"""The ``kind`` of the memory holding an ingested text unless another is given."""


class Extraction(Model):
    """What an extractor found in a text: the entities it names and the facts it states
    between them. A fact's subject or object that is not among ``entities`` is an entity all
    the same (created untyped if it does not exist)."""

    model_config = ConfigDict(frozen=True)

    entities: list[NewEntity] = Field(default_factory=list)
    facts: list[NewFact] = Field(default_factory=list)


@runtime_checkable
class Extractor(Protocol):
    """Turns a text into an :class:`Extraction`. Async, since extractors worth having call a
    model; a deterministic one simply returns."""

    async def extract(self, text: str) -> Extraction:
        """The entities and facts ``text`` states."""
        ...


@dataclass(frozen=True, slots=True)
class Pattern:
    """One rule of a :class:`PatternExtractor`: every match of ``regex`` states
    ``subject -predicate-> object``. The expression names its groups ``subject`` and
    ``object`` (and optionally ``value``, the fact's value); the matched names are stripped of
    surrounding whitespace. ``subject_type`` / ``object_type`` type the entities it names."""

    regex: str | re.Pattern[str]
    predicate: str
    subject_type: str = ""
    object_type: str = ""
    compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            compiled = re.compile(self.regex) if isinstance(self.regex, str) else self.regex
        except re.error as exc:
            raise ValidationError(
                f"pattern {self.regex!r} is not a regular expression: {exc}"
            ) from None
        if not isinstance(compiled, re.Pattern):
            raise ValidationError(f"a pattern's regex is a string or re.Pattern, not {compiled!r}")
        missing = {"subject", "object"} - set(compiled.groupindex)
        if missing:
            raise ValidationError(
                f"pattern {compiled.pattern!r} names no group {', '.join(sorted(missing))} "
                "(use (?P<subject>...) and (?P<object>...))"
            )
        check_text(self.predicate, "a pattern's predicate", limit=256)
        check_text(self.subject_type, "a pattern's subject_type", empty=True, limit=256)
        check_text(self.object_type, "a pattern's object_type", empty=True, limit=256)
        object.__setattr__(self, "compiled", compiled)


class PatternExtractor:
    """A deterministic :class:`Extractor`: each :class:`Pattern`'s matches, in the order of
    the patterns and then of the text. An entity takes the type of the first match naming
    it; a fact stated twice is extracted once.

    ::

        extractor = PatternExtractor([
            Pattern(r"(?P<subject>[A-Z]\\w+) works at (?P<object>[A-Z]\\w+)", "works_at",
                    subject_type="person", object_type="organization"),
        ])
    """

    def __init__(self, patterns: Iterable[Pattern]) -> None:
        if isinstance(patterns, Pattern):
            patterns = [patterns]
        self.patterns = list(patterns)
        for p in self.patterns:
            if not isinstance(p, Pattern):
                raise ValidationError(f"PatternExtractor takes Patterns, not {p!r}")

    def extract_sync(self, text: str) -> Extraction:
        """:meth:`extract`, without an event loop."""
        check_text(text, "text", empty=True)
        types: dict[str, str] = {}
        facts: dict[tuple[str, str, str, str], NewFact] = {}
        for p in self.patterns:
            for match in p.compiled.finditer(text):
                subject = (match.group("subject") or "").strip()
                obj = (match.group("object") or "").strip()
                if not subject or not obj:
                    continue
                value = match.groupdict().get("value")
                value = value.strip() if isinstance(value, str) else None
                types.setdefault(subject, p.subject_type)
                types.setdefault(obj, p.object_type)
                if not types[subject]:
                    types[subject] = p.subject_type
                if not types[obj]:
                    types[obj] = p.object_type
                fact = NewFact(subject=subject, predicate=p.predicate, object=obj, value=value)
                facts.setdefault((subject, p.predicate, obj, repr(value)), fact)
        return Extraction(
            entities=[NewEntity(name=n, type=t) for n, t in types.items()],
            facts=list(facts.values()),
        )

    async def extract(self, text: str) -> Extraction:
        """The facts the patterns match in ``text`` and the entities they name."""
        return self.extract_sync(text)


class Ingested(Model):
    """What :func:`ingest` (or one graph document of the LangChain graph store) wrote: the
    memory holding the text (``None`` when no source was kept), the entities created, and the
    facts newly recorded (each sourced from that memory)."""

    model_config = ConfigDict(frozen=True)

    memory: Memory | None
    entities: list[Entity]
    facts: list[Fact]


def merged(extraction: Extraction) -> tuple[list[NewEntity], list[NewFact]]:
    """``extraction``'s entities, one per name (the first one's type, summary and aliases, or
    a later one's where the first has none; attributes merged, the first value of a key
    kept), with an untyped entity for every fact end not among them, and its facts, each
    once."""
    if not isinstance(extraction, Extraction):
        raise ValidationError(
            "an extractor returns an Extraction, not " + type(extraction).__name__
        )
    entities: dict[str, NewEntity] = {}
    for e in extraction.entities:
        have = entities.get(e.name)
        if have is None:
            entities[e.name] = e
            continue
        entities[e.name] = have.model_copy(
            update={
                "type": have.type or e.type,
                "summary": have.summary or e.summary,
                "aliases": list(dict.fromkeys([*have.aliases, *e.aliases])),
                "attributes": {**e.attributes, **have.attributes},
            }
        )
    facts: dict[str, NewFact] = {}
    for f in extraction.facts:
        for end in (f.subject, f.object):
            if end not in entities:
                entities[end] = NewEntity(name=end)
        same = canonical_json(
            [f.subject, f.predicate, f.object, f.value, str(f.valid_from), str(f.valid_until)],
            what=f"the fact {f.subject} {f.predicate} {f.object}",
        )
        facts.setdefault(same, f)
    return list(entities.values()), list(facts.values())


def write_body(text: str, result: str) -> str:
    """A graph write's statements without its own ``BEGIN`` / ``COMMIT``, its closing
    statement (what it wrote: a ``SELECT`` or a ``{ now: ... }`` object) bound to ``result``:
    so that several run in one transaction."""
    body = text.strip()
    if not (body.startswith("BEGIN;") and body.endswith("COMMIT;")):
        raise AssertionError("a graph write is one BEGIN ... COMMIT block")
    body = body.removeprefix("BEGIN;").removesuffix("COMMIT;").rstrip()
    for opening in ("\n{ now:", "\nSELECT "):
        head, sep, last = body.rpartition(opening)
        if sep and last.endswith(";"):
            return f"{head}\nLET {result} = ({sep.strip()}{last[:-1]});\n"
    raise AssertionError("a graph write ends with a statement of what it wrote")


def created_entities(done: Any, rows: list[dict[str, Any]]) -> list[Entity]:
    """The entities a create wrote: as it read them back, or (all new) made from its rows."""
    if not isinstance(done, Mapping):  # a write that reads back what it created
        return [Entity.model_validate(e) for e in done or []]
    if done.get("rows") is not None:
        return [Entity.model_validate(e) for e in done["rows"]]
    now = done["now"]
    return [
        Entity(
            id=str(r["id"].key), scope=r["scope"], name=r["name"], type=r["type"],
            aliases=r["aliases"], summary=r["summary"], attributes=plain(r["attributes"]),
            embedding_model=r.get("embedding_model"), created_at=now, updated_at=now,
            recorded_at=now, position=r.get("position"),
        )
        for r in rows
    ]  # fmt: skip


def _recorded(
    done: Any, rows: list[dict[str, Any]], ends: Mapping[str, tuple[str, str]], scope: str
) -> list[Fact]:
    """The facts an assertion recorded, in input order: as it read them back, or (all
    recorded as sent) made from its rows."""
    if not isinstance(done, Mapping) or done.get("rows") is not None:
        found = done["rows"] if isinstance(done, Mapping) else done or []
        by_id = {str(f["id"].key): f for f in found}
        return [
            Fact.model_validate({**by_id[k], "subject": subject, "object": obj})
            for k, (subject, obj) in ends.items()
            if k in by_id
        ]
    now, causes = done["now"], list(done.get("causes") or [])
    out = []
    for r in rows:
        subject, obj = ends[str(r["id"].key)]
        out.append(
            Fact(
                id=str(r["id"].key), scope=scope, subject=subject, predicate=r["predicate"],
                object=obj, value=plain(r["value"]), key=r["key"],
                valid_from=r["valid_from"] or now, valid_until=r["valid_until"],
                recorded_at=now, invalidated_at=now if causes else None,
                invalidated_causes=causes,
            )
        )  # fmt: skip
    return out


# Extracted attributes add to an existing entity's: it keeps its type and the values it has,
# and gains the keys it lacks (the reference server's create skips existing entities; an
# extraction that says more about one should not be lost).
_ENRICH: Final = """
FOR $r IN $e_rows.filter(|$r| $r.id INSIDE $alive) {
    UPDATE ONLY $r.id SET attributes = object::extend($r.attributes, attributes),
        type = IF type = '' { $r.type } ELSE { type }, updated_at = time::now()
        WHERE object::extend($r.attributes, attributes) != attributes
            OR (type = '' AND $r.type != '') RETURN NONE;
};
"""


@functools.cache
def _ingest_query(*, source: bool, attaching: bool, facts: bool) -> str:
    parts = ["BEGIN;\n"]
    if source:
        parts.append(memory_create_block(attaching=attaching))
    parts.append("LET $rows = $e_rows;\nLET $ids = $e_ids;\n")
    parts.append(write_body(CREATE_ENTITIES_STATEMENTS, "$g_entities"))
    parts.append(_ENRICH)
    if facts:
        parts.append("LET $rows = $f_rows;\nLET $ids = $f_ids;\n")
        parts.append(write_body(ASSERT_FACTS_STATEMENTS, "$g_facts"))
    memory = f"(SELECT {MEMORY_FIELDS} FROM ONLY $p_memory)" if source else "NONE"
    parts.append(
        f"RETURN {{ memory: {memory}, entities: $g_entities, "
        f"facts: {'$g_facts' if facts else 'NONE'} }};\nCOMMIT;"
    )
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class PreparedWrite:
    """An extraction (and its source) checked and turned into one transaction's statements and
    parameters, not yet sent: :func:`write_prepared` sends it."""

    text: str
    params: dict[str, Any]
    source_text: str | None
    fact_ends: dict[str, tuple[str, str]]
    """Each fact's subject and object names, by fact key (the write does not read them)."""


def prepare_extraction(
    *,
    extraction: Extraction,
    scope: str,
    source: NewMemory | None,
    provenance: Sequence[Any] = (),
) -> PreparedWrite:
    """Check ``extraction`` (and ``source`` with its ``provenance``) for a write in ``scope``
    and prepare it; nothing is sent."""
    check_scope(scope)
    entities, facts = merged(extraction)
    e_rows: dict[RecordId, dict[str, Any]] = {}
    for i, e in enumerate(entities):
        row = entity_row(scope, e, i)
        e_rows.setdefault(row["id"], row)
    rows = list(e_rows.values())
    params: dict[str, Any] = {"scope": scope, "e_rows": rows, "e_ids": list(e_rows)}
    sources: list[Any] = []
    attaching = False
    if source is not None:
        if source.scope != scope:
            raise ValidationError(f"the source is in scope {source.scope!r}, not {scope!r}")
        memory_params = memory_row(source, provenance=provenance)
        attaching = "p_sources" in memory_params
        params.update(memory_params)
        sources = [memory_params["p_memory"]]
    elif provenance:
        raise ValidationError("provenance describes the source text: give a source too")
    f_rows = fact_rows(scope, facts)
    ends: list[tuple[str, str]] = []
    if f_rows:
        end_params, ends = fact_ends(f_rows)
        params.update(end_params)
        keys = [r["key"] for r in f_rows]
        params["f_rows"] = f_rows
        params["f_ids"] = [r["id"] for r in f_rows]
        params["keys"] = keys
        params["distinct"] = len(set(keys)) == len(keys)
        params["predicates"] = sorted({r["predicate"] for r in f_rows})
        params.update(fact_source_params(parse_sources(sources), scope=scope))
    text = _ingest_query(source=source is not None, attaching=attaching, facts=bool(f_rows))
    return PreparedWrite(
        text=text,
        params=params,
        source_text=source.content if source is not None else None,
        fact_ends={str(r["id"].key): pair for r, pair in zip(f_rows, ends, strict=True)},
    )


async def write_prepared(
    db: Executor, prepared: PreparedWrite, *, embedder: Embedder | None = None
) -> Ingested:
    """Send ``prepared`` (its source memory embedded by ``embedder`` when given) in one
    transaction and return what it wrote."""
    params = dict(prepared.params)
    rows = [dict(r) for r in params["e_rows"]]
    params["e_rows"] = rows
    if embedder is not None and prepared.source_text is not None:
        space = await writing_space(db, embedder)
        (params["m_embedding"],) = await embed_texts(
            embedder, [prepared.source_text], space.index_dimension
        )
        params["m_model"] = embedder.model
    await entity_vectors(db, rows)
    for r in rows:
        if "embedding" in r and r["embedding"] is None:
            del r["embedding"]
    done = await db.query_required_single(prepared.text, dict, **params)
    return Ingested(
        memory=done["memory"],
        entities=created_entities(done["entities"], rows),
        facts=_recorded(
            done["facts"], params.get("f_rows", []), prepared.fact_ends, params["scope"]
        ),
    )


async def write_extraction(
    db: Executor,
    *,
    extraction: Extraction,
    scope: str,
    source: NewMemory | None,
    provenance: Sequence[Any] = (),
    embedder: Embedder | None = None,
) -> Ingested:
    """Write ``extraction`` in ``scope``, in one transaction: first ``source`` as a memory
    (with its ``provenance``; embedded by ``embedder`` when given), then the entities, then
    the facts, sourced from that memory. Everything is checked before anything is sent."""
    prepared = prepare_extraction(
        extraction=extraction, scope=scope, source=source, provenance=provenance
    )
    return await write_prepared(db, prepared, embedder=embedder)


@public
async def ingest(
    db: Executor,
    *,
    text: str,
    extractor: Extractor,
    scope: str = DEFAULT_SCOPE,
    key: str | None = None,
    kind: str = SOURCE_KIND,
    tags: Iterable[str] = (),
    metadata: Mapping[str, Any] | None = None,
    agent: str | None = None,
    provenance: Sequence[Any] = (),
    embedder: Embedder | None = None,
) -> Ingested:
    """Run ``extractor`` over ``text``, then store the text as a memory (of ``kind``, with
    ``key``, ``tags``, ``metadata``, ``agent`` and ``provenance`` as
    :func:`surreal_store.memory.remember` takes them; embedded when ``embedder`` is given)
    and write the entities and facts extracted from it, the facts sourced from that memory,
    in one transaction.

    The same text in the same scope is the same memory, and a fact already current is not
    recorded again: ingesting a text twice writes nothing the second time. Entities that
    exist keep their type and attribute values and gain the attribute keys they lack.
    Distrusting the memory (or a source in ``provenance``) hides the facts it gave."""
    check_text(text, "text", empty=True)
    if not isinstance(extractor, Extractor):
        raise ValidationError(
            "extractor must have an async extract(text) returning an Extraction, not "
            + type(extractor).__name__
        )
    extraction = await extractor.extract(text)
    source = NewMemory(
        content=text, scope=check_scope(scope), key=key, kind=kind, tags=tuple(tags),
        metadata=metadata, agent=agent,
    )  # fmt: skip
    return await write_extraction(
        db, extraction=extraction, scope=scope, source=source, provenance=provenance,
        embedder=embedder,
    )  # fmt: skip


# -- the source memory ----------------------------------------------------------------------
# The statements of memory.remember for one memory: created unless the scope has the same
# content already (then it is that memory, unchanged), its provenance recorded.
_SOURCE_MEMORY: Final = """
IF !record::exists($p_memory) {
    CREATE ONLY $p_memory CONTENT {
        scope: $scope, agent: $m_agent, key: $m_key, kind: $m_kind, content: $m_content,
        content_hash: $m_hash, tags: $m_tags, metadata: $m_metadata,
        embedding: $m_embedding, embedding_model: $m_model,
    } RETURN NONE;
};
"""


def memory_create_block(*, attaching: bool) -> str:
    """The statements that create the source memory (and record its provenance when
    ``attaching``), parameters as :func:`memory_row` gives."""
    return _SOURCE_MEMORY + (_facts.ATTACH_BLOCK if attaching else "")


def memory_row(item: NewMemory, *, provenance: Sequence[Any]) -> dict[str, Any]:
    """The parameters of :func:`memory_create_block` for ``item`` (not embedded yet), checked
    as :func:`surreal_store.memory.remember` checks its own."""
    if item.embedding is not None:
        raise ValidationError("a source memory is embedded by an embedder, not given a vector")
    if item.commit is not None or item.valid_from is not None or item.valid_until is not None:
        raise ValidationError("a source memory takes no commit, valid_from or valid_until")
    content = check_text(item.content, "the source text", empty=True)
    scope = check_scope(item.scope)
    if item.metadata is not None and not isinstance(item.metadata, Mapping):
        raise ValidationError("metadata must be a mapping")
    memory = RecordId("memory", memory_id(scope, content))
    row: dict[str, Any] = {
        "p_memory": memory,
        "m_agent": RecordId("agent", check_text(item.agent, "agent"))
        if item.agent is not None
        else None,
        "m_key": check_text(item.key, "key") if item.key is not None else None,
        "m_kind": check_text(item.kind, "kind", limit=128),
        "m_content": content,
        "m_hash": hashlib.sha256(content.encode()).hexdigest(),
        "m_tags": check_tags(item.tags),
        "m_metadata": json_value(dict(item.metadata or {}), what="metadata"),
        "m_embedding": None,
        "m_model": None,
    }
    if isinstance(provenance, str | Mapping) or not isinstance(provenance, Sequence):
        raise ValidationError("provenance must be a list of provenance facts")
    if provenance:
        row.update(_facts.attach_params(memory, [_facts.parse_provenance(p) for p in provenance]))
    return row
