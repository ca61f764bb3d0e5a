"""``surreal-store import-graph FILE`` and ``export-graph``: the MCP reference memory server's
JSON Lines file (``MEMORY_FILE_PATH``) into the store's knowledge graph, and back out.

An import is recorded as a run (``import-graph.<digest of the file>``) with one event per line
(its file, line number and record), and every observation and relation is sourced from its
line's event: ``lineage`` of an observation names the line it came from, and distrusting the
run hides everything the file brought. Importing the same file again adds nothing (entities
that exist are skipped, as the reference skips them; facts and observations that exist are not
repeated)."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final

import typer

from .._errors import NotFoundError, ValidationError
from .._executor import Executor
from .._facts import RunTrace
from .._types import check_text
from ..memory import DEFAULT_SCOPE  # graph's too
from ._app import Options, app, existing_store, run_async, store_options
from ._lazy import graph, runs
from ._render import out, with_progress

__all__ = ["ImportReport", "export_text", "import_records", "read_memory_file"]

_AGENT: Final = "surreal-store import-graph"
_EVENT_KIND: Final = "graph_line"
_BATCH: Final = 1000

Record = tuple[dict[str, Any], int]
"""A parsed line of the file and its line number (from 1)."""


class Missing(StrEnum):
    """What an import does with a relation whose end is not an entity of the file or store."""

    refuse = "refuse"
    create = "create"
    skip = "skip"


def read_memory_file(path: Path) -> tuple[list[Record], bytes]:
    """The file's records (blank lines skipped, as the reference skips them) and its bytes.
    A line that is not a JSON object of one of the reference's two kinds, with its fields of
    the right types, is :class:`ValidationError` naming the file and line."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    records: list[Record] = []
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(item, dict):
            raise ValidationError(f"{where}: a line is a JSON object")
        kind = item.get("type")
        if kind == "entity":
            _fields(item, where, ("name", "entityType"), "observations")
        elif kind == "relation":
            _fields(item, where, ("from", "to", "relationType"), None)
        else:
            raise ValidationError(
                f"{where}: type is 'entity' or 'relation', not {kind!r} (the reference server "
                "drops such lines the next time it writes the file)"
            )
        records.append((item, n))
    return records, data


def _fields(item: dict[str, Any], where: str, texts: Sequence[str], texts_list: str | None) -> None:
    for name in texts:
        if not isinstance(item.get(name), str):
            raise ValidationError(f"{where}: {name} is a string")
    if texts_list is not None:
        value = item.get(texts_list)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValidationError(f"{where}: {texts_list} is a list of strings")


@dataclass
class ImportReport:
    """What an import did."""

    run_id: str
    lines: int = 0
    entities: int = 0
    """Entities created (those already in the store are skipped)."""
    observations: int = 0
    """Observations newly added."""
    relations: int = 0
    """Relations (facts) newly recorded."""
    merged_lines: list[int] = field(default_factory=list)
    """Entity lines repeating an earlier line's name (the reference's within-call-duplicates
    defect writes them): their observations join the first one's."""
    created_ends: list[str] = field(default_factory=list)
    """Names created for relations to entities the file does not have (``Missing.create``)."""
    skipped_lines: list[int] = field(default_factory=list)
    """Relation lines left out (``Missing.skip``)."""


def _check(records: Sequence[Record], path: str) -> None:
    """What the store refuses, said per line before anything is written."""
    for item, n in records:
        where = f"{path}:{n}"
        try:
            if item["type"] == "entity":
                graph.NewEntity(
                    name=check_text(item["name"], "name", limit=1024), type=item["entityType"]
                )
                for o in item["observations"]:
                    check_text(o, "an observation", empty=True)
            else:
                for end in ("from", "to"):
                    check_text(item[end], end, limit=1024)
                check_text(item["relationType"], "relationType", limit=256)
        except ValidationError as exc:
            raise ValidationError(f"{where}: {exc}") from None


async def import_records(
    db: Executor,
    records: Sequence[Record],
    *,
    source: str,
    digest: str | None = None,
    scope: str = DEFAULT_SCOPE,
    missing: Missing = Missing.refuse,
    progress: Callable[[str, int], None] | None = None,
) -> ImportReport:
    """Write ``records`` (from :func:`read_memory_file`; ``source`` names the file) into the
    graph of ``scope``, each observation and relation sourced from its line's event of the
    import's run, and report what was new. Everything is checked first: a record the store
    cannot hold, or (with ``missing=refuse``) a relation to an entity neither the file nor the
    store has, is :class:`ValidationError` / :class:`NotFoundError` before any write."""
    _check(records, source)
    if digest is None:
        digest = hashlib.sha256(
            "\n".join(json.dumps(r, sort_keys=True) for r, _ in records).encode()
        ).hexdigest()
    # An agent's runs are its own and named after it (schema 021); anyone else's import is a
    # run of the import itself.
    signin = getattr(db, "signed_in_as", None)
    agent: str | None = (
        getattr(signin, "name", None) if getattr(signin, "kind", None) == "agent" else None
    )
    import_id = f"import-graph.{hashlib.sha256(f'{scope}:{digest}'.encode()).hexdigest()[:32]}"
    run_id = f"{agent}:{import_id}" if agent is not None else import_id
    report = ImportReport(run_id=run_id, lines=len(records))

    # Entities: the first line of a name counts; a later one adds its observations.
    entities: dict[str, tuple[dict[str, Any], list[int]]] = {}
    for item, n in records:
        if item["type"] == "entity":
            if item["name"] in entities:
                entities[item["name"]][1].append(n)
                report.merged_lines.append(n)
            else:
                entities[item["name"]] = (item, [n])
    relations = [(item, n) for item, n in records if item["type"] == "relation"]
    ends = {end for item, _ in relations for end in (item["from"], item["to"])}
    absent = sorted(ends - set(entities))
    if absent:
        there = await graph.open_nodes(db, names=absent, scope=scope)
        absent = [n for n in absent if n not in {e.name for e in there.entities}]
    if absent and missing is Missing.refuse:
        lines = [str(n) for item, n in relations if item["from"] in absent or item["to"] in absent]
        shown = ", ".join(repr(a) for a in absent[:5]) + (", ..." if len(absent) > 5 else "")
        raise NotFoundError(
            f"{source}: relations (lines {', '.join(lines[:10])}"
            f"{', ...' if len(lines) > 10 else ''}) name entities the file does not have: "
            f"{shown}; import with --missing-entities create (made with no type) or skip"
        )
    if absent and missing is Missing.skip:
        gone = set(absent)
        report.skipped_lines = [n for item, n in relations if {item["from"], item["to"]} & gone]
        relations = [(i, n) for i, n in relations if not {i["from"], i["to"]} & gone]
        absent = []

    # The run and its events: one per line, appended in batches that a retried import
    # appends only once (idempotency keys).
    seq_of = await _record_lines(db, run_id, agent or _AGENT, digest, source, records)
    by_line = {n: item for item, n in records}
    if progress is not None:
        progress("lines recorded", len(records))

    made = [
        graph.NewEntity(name=name, type=item["entityType"]) for name, (item, _) in entities.items()
    ]
    made += [graph.NewEntity(name=name, type="") for name in absent]
    report.created_ends = absent
    for start in range(0, len(made), _BATCH):
        created = await graph.create_entities(
            db, entities=made[start : start + _BATCH], scope=scope
        )
        report.entities += len(created)
        if progress is not None:
            progress("entities", len(made[start : start + _BATCH]))
    # Observations and relations, each with its line as its source.
    for name, (_, entity_lines) in entities.items():
        for n in entity_lines:
            contents = by_line[n]["observations"]
            if contents:
                added = await graph.add_observations_many(
                    db, observations={name: contents}, scope=scope,
                    source=RunTrace(run_id=run_id, seq=seq_of[n]),
                )  # fmt: skip
                report.observations += len(added[name])
        if progress is not None:
            progress("observations", 1)
    for item, n in relations:
        fact = graph.NewFact(
            subject=item["from"], predicate=item["relationType"], object=item["to"]
        )
        recorded = await graph.assert_facts(
            db, facts=[fact], scope=scope, source=RunTrace(run_id=run_id, seq=seq_of[n])
        )
        report.relations += len(recorded)
        if progress is not None:
            progress("relations", 1)
    return report


async def _record_lines(
    db: Executor,
    run_id: str,
    agent_name: str,
    digest: str,
    source: str,
    records: Sequence[Record],
) -> dict[int, int]:
    """The import's run (made once) and its events, one per line: line number -> seq."""
    try:
        await runs.get_run(db, run_id=run_id)
    except NotFoundError:
        await runs.create_run(
            db, spec_digest=digest, agent_name=agent_name, tags=["import-graph"], run_id=run_id
        )
    seq_of: dict[int, int] = {}
    for start in range(0, len(records), _BATCH):
        batch = records[start : start + _BATCH]
        events = [
            runs.NewEvent(kind=_EVENT_KIND, payload={"file": source, "line": n, "record": item})
            for item, n in batch
        ]
        seqs = await runs.append_events(
            db, run_id=run_id, events=events, idempotency_key=f"{run_id}:{start}"
        )
        seq_of.update({n: s for (_, n), s in zip(batch, seqs, strict=True)})
    return seq_of


def export_text(sub: graph.Subgraph) -> str:
    """The graph as the reference server writes its file: entity lines, then relation lines,
    each in the order the store lists them, compact JSON, no newline after the last."""
    lines = [
        json.dumps(
            {
                "type": "entity",
                "name": e.name,
                "entityType": e.type,
                "observations": list(dict.fromkeys(sub.contents(e.name))),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for e in sub.entities
    ]
    seen: set[tuple[str, str, str]] = set()
    for f in sub.facts:
        triple = (f.subject, f.object, f.predicate)
        if triple not in seen:  # one line per relation, whatever values its facts carry
            seen.add(triple)
            lines.append(
                json.dumps(
                    {
                        "type": "relation",
                        "from": f.subject,
                        "to": f.object,
                        "relationType": f.predicate,
                    },
                    ensure_ascii=False,
                    separators=(",", ":"),
                )
            )
    return "\n".join(lines)


# -- the commands ---------------------------------------------------------------------------

_SCOPE = Annotated[
    str, typer.Option(help="The graph's scope (the MCP server's: default, or an agent's).")
]


@app.command("import-graph")
@store_options
def import_graph(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", help="A memory.jsonl written by the MCP reference memory server."
        ),
    ],
    scope: _SCOPE = DEFAULT_SCOPE,
    missing_entities: Annotated[
        Missing,
        typer.Option(
            help="Relations to names the file has no entity for (the reference server stores "
            "them): refuse the import, create the entities (no type), or skip the relations."
        ),
    ] = Missing.refuse,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Bring the MCP reference memory server's file into the knowledge graph, each observation
    and relation sourced from its line (a run with an event per line)."""
    opts: Options = ctx.obj
    try:
        records, data = read_memory_file(path)
    except OSError as exc:
        raise ValidationError(f"{path}: {exc.strerror or exc}") from None

    digest = hashlib.sha256(data).hexdigest()

    async def go() -> ImportReport:
        async with opts.store(migrate=True, check=True) as store:
            return await with_progress(
                quiet,
                "importing",
                lambda p: import_records(
                    store, records, source=str(path.resolve()), digest=digest,
                    scope=scope, missing=missing_entities, progress=p,
                ),
            )  # fmt: skip

    report = run_async(go)
    if not quiet:
        out.print(
            f"imported {path}: {report.entities} entities, {report.observations} observations, "
            f"{report.relations} relations new (of {report.lines} lines; run {report.run_id})",
            highlight=False,
        )
        if report.merged_lines:
            out.print(f"  lines repeating an entity's name, merged: {report.merged_lines[:20]}")
        if report.created_ends:
            out.print(f"  entities created for relations' ends: {report.created_ends[:20]}")
        if report.skipped_lines:
            out.print(
                f"  relation lines skipped (an end is no entity): {report.skipped_lines[:20]}"
            )


@app.command("export-graph")
@store_options
def export_graph(
    ctx: typer.Context,
    path: Annotated[
        Path | None,
        typer.Argument(metavar="[FILE]", help="Where to write (default: standard output)."),
    ] = None,
    scope: _SCOPE = DEFAULT_SCOPE,
) -> None:
    """Write the knowledge graph as the MCP reference memory server's file (memory.jsonl)."""
    opts: Options = ctx.obj

    async def go() -> str:
        async with existing_store(opts) as store:
            return export_text(await graph.read_graph(store, scope=scope))

    text = run_async(go)
    if path is None:
        sys.stdout.write(text + ("\n" if text else ""))
    else:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
