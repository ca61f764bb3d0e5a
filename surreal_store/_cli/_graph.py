"""The knowledge graph: an entity with its facts and observations, an entity's facts as of a
date."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer

from .._client import Store
from .._errors import NotFoundError, ValidationError
from ..memory import DEFAULT_SCOPE  # graph's too
from ._app import app, store_options, with_store
from ._lazy import graph
from ._render import dump, out, plural, print_json, print_rows


def _when(text: str | None, option: str) -> dt.datetime | None:
    """A date (``2026-03-01``: its midnight, UTC) or an ISO datetime (UTC without a zone)."""
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(
            f"{option} {text!r} is not a date (2026-03-01) or ISO datetime (2026-03-01T12:00)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _day(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
        return f"{value:%Y-%m-%d}"
    return f"{value:%Y-%m-%d %H:%M}"


def _value(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _statement(f: graph.Fact, name: str) -> str:
    """The fact as a sentence, the entity asked about first where it is the subject."""
    said = f"{f.subject} {f.predicate} {f.object}"
    value = _value(f.value)
    return said + (f" = {value}" if value else "") + (" (hidden)" if f.invalidated else "")


def _valid(f: graph.Fact) -> str:
    start = _day(f.valid_from)
    return f"{start}..{_day(f.valid_until)}" if f.valid_until else f"since {start}"


def _facts_table(facts: list[graph.Fact], name: str, empty: str) -> None:
    rows = [[_valid(f), _day(f.recorded_at), _statement(f, name)] for f in facts]
    print_rows(["valid", "recorded", "fact"], rows, text="fact", empty=empty)


_AS_OF_HELP = "What was true on this date (2026-03-01) or ISO datetime, as the store knows it now."
_KNOWN_AT_HELP = "As the store held it on this date (what it believed then)."


@app.command("entity")
@store_options
def entity_(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The entity's exact name.")],
    scope: Annotated[str, typer.Option(help="The entity's scope.")] = DEFAULT_SCOPE,
    as_of: Annotated[str | None, typer.Option("--as-of", help=_AS_OF_HELP)] = None,
    known_at: Annotated[str | None, typer.Option("--known-at", help=_KNOWN_AT_HELP)] = None,
    include_invalidated: Annotated[
        bool, typer.Option("--include-invalidated", help="Show hidden facts (marked).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """An entity of the knowledge graph: its type, aliases and summary, its facts (either
    end) and its observations in the order they were added."""
    when = _when(as_of, "--as-of")
    known = _when(known_at, "--known-at")

    async def go(s: Store) -> graph.EntityView | None:
        return await graph.entity(
            s, name=name, scope=scope, valid_at=when, known_at=known,
            include_invalidated=include_invalidated,
        )  # fmt: skip

    view = with_store(ctx.obj, go)
    if view is None:
        raise NotFoundError(
            f"no entity {name!r} in scope {scope!r}" + (f" known at {known_at}" if known else "")
        )
    if as_json:
        print_json(dump(view))
        return
    e = view.entity
    out.print(f"[bold]{e.name}[/]" + (f" ({e.type})" if e.type else ""), highlight=False)
    if e.aliases:
        out.print(f"aliases: {', '.join(e.aliases)}", highlight=False)
    if e.summary:
        out.print(e.summary, highlight=False, markup=False)
    out.rule(plural(len(view.facts), "fact"))
    _facts_table(view.facts, e.name, "no facts")
    out.rule(plural(len(view.observations), "observation"))
    rows = [[str(o.position + 1), o.content + (" (hidden)" if o.invalidated else "")]
            for o in view.observations]  # fmt: skip
    print_rows(["#", "observation"], rows, text="observation", empty="no observations")


@app.command("facts")
@store_options
def facts_(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The entity's exact name.")],
    as_of: Annotated[str | None, typer.Option("--as-of", help=_AS_OF_HELP)] = None,
    known_at: Annotated[str | None, typer.Option("--known-at", help=_KNOWN_AT_HELP)] = None,
    predicate: Annotated[str | None, typer.Option(help="Only facts of this predicate.")] = None,
    scope: Annotated[str, typer.Option(help="The entity's scope.")] = DEFAULT_SCOPE,
    include_invalidated: Annotated[
        bool, typer.Option("--include-invalidated", help="Show hidden facts (marked).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """An entity's facts (either end) true on a date (--as-of; default now), as the store
    knows them now or, with --known-at, as it held them on another date."""
    valid = _when(as_of, "--as-of")
    known = _when(known_at, "--known-at")

    async def go(s: Store) -> list[graph.Fact]:
        found = await graph.facts(
            s, entity=name, predicate=predicate, scope=scope, valid_at=valid, known_at=known,
            include_invalidated=include_invalidated,
        )  # fmt: skip
        if not found and await graph.entity(s, name=name, scope=scope, known_at=known) is None:
            raise NotFoundError(
                f"no entity {name!r} in scope {scope!r}"
                + (f" known at {known_at}" if known else "")
            )
        return found

    found = with_store(ctx.obj, go)
    if as_json:
        print_json(dump(found))
        return
    said = (f" true on {as_of}" if as_of else "") + (f" known at {known_at}" if known_at else "")
    _facts_table(found, name, f"no facts about {name}{said}")
