"""The application: its options, how a command opens the store, runs and fails."""

from __future__ import annotations

import contextlib
import functools
import inspect
import shlex
import shutil
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import anyio
import typer

from .. import memory
from .._api import agent_refusal
from .._client import Store
from .._doors import own_embedder
from .._errors import NotFoundError, NotVisibleError, QueryError, StoreError, ValidationError
from .._ids import HEX
from ._render import err, escape_markup

if TYPE_CHECKING:
    from .._config import Settings

__all__ = [
    "Group",
    "Options",
    "app",
    "embedder_for",
    "error_text",
    "existing_store",
    "fail",
    "program",
    "require_store",
    "resolve_id",
    "run_async",
    "store_options",
    "with_store",
]

T = TypeVar("T")

try:  # typer 0.29 and later vendor their own click
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - older typer uses click itself
    from click.exceptions import (  # type: ignore[import-not-found,no-redef,assignment,unused-ignore]
        ClickException,
        UsageError,
    )


def _first_paragraph(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n")[0].split())


class Group(typer.core.TyperGroup):
    """Usage errors are one line, like every other error: ``error: ...`` and exit 2. The
    command list shows each command's first paragraph whole, wrapped by words (click would
    cut it at 45 characters)."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, _first_paragraph(command.help)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "surreal-store"
            message = " ".join(exc.format_message().split())
            err.print(f"[bold red]error:[/] {escape_markup(message)} (see: {where} --help)")
            sys.exit(exc.exit_code)
        except ClickException as exc:
            message = " ".join(exc.format_message().split())
            err.print(f"[bold red]error:[/] {escape_markup(message)}")
            sys.exit(exc.exit_code)
        except typer.Abort:
            err.print("[bold red]error:[/] aborted")
            sys.exit(1)
        except StoreError as exc:  # raised outside run_async, e.g. while reading the settings
            err.print(f"[bold red]error:[/] {escape_markup(error_text(exc))}", highlight=False)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="surreal-store",
    help=(
        "A provenance-first knowledge store for AI agents, on SurrealDB. Store options "
        "(--url, --ns, --db, --tenant, --username, --password, --schema-dir) go before or "
        "after the command."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: paragraphs rewrapped to the terminal by words, no padded panels.
    rich_markup_mode=None,
    cls=Group,
)


@dataclass
class Options:
    url: str | None = None
    namespace: str | None = None
    database: str | None = None
    username: str | None = None
    password: str | None = None
    schema_dir: Path | None = None
    tenant: str | None = None

    def settings(self) -> Settings:
        from .._config import Settings  # pydantic-settings, when a command opens a store

        return Settings.load(
            url=self.url,
            namespace=self.namespace,
            database=self.database,
            tenant=self.tenant,
            username=self.username,
            password=self.password,
        )

    def store(self, *, migrate: bool = False, check: bool = False) -> Store:
        return Store(
            settings=self.settings(),
            migrate=migrate,
            check_schema=check,
            schema_dir=self.schema_dir,
        )


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape_markup(message)}", highlight=False, markup=True)
    raise typer.Exit(code)


def error_text(exc: StoreError) -> str:
    """What the user reads: the database's answer, never the statement that got it."""
    text = exc.message if isinstance(exc, QueryError) else str(exc)
    return " ".join(text.split())


def run_async(fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn`` on asyncio (the SDK needs it); errors become one line and exit code 1."""
    try:
        return anyio.run(fn, backend="asyncio")
    except StoreError as exc:
        fail(error_text(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)


@app.callback()
def _global(
    ctx: typer.Context,
    url: Annotated[
        str | None, typer.Option(help="Store URL: mem://, surrealkv://PATH, ws://HOST:PORT.")
    ] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", "--ns")] = None,
    database: Annotated[str | None, typer.Option("--database", "--db")] = None,
    tenant: Annotated[
        str | None, typer.Option(help="The tenant: a database of its own (as --db).")
    ] = None,
    username: Annotated[
        str | None, typer.Option(help="A user of the tenant, or a server's root user.")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(help="Prefer SURREAL_STORE_PASSWORD: options show in process lists."),
    ] = None,
    schema_dir: Annotated[
        Path | None, typer.Option(help="Schema files to use instead of the packaged ones.")
    ] = None,
) -> None:
    ctx.obj = Options(url, namespace, database, username, password, schema_dir, tenant)


_STORE_OPTIONS: dict[str, Any] = {
    "url": Annotated[str | None, typer.Option(help="Store URL (as before the command).")],
    "namespace": Annotated[str | None, typer.Option("--namespace", "--ns")],
    "database": Annotated[str | None, typer.Option("--database", "--db")],
    "tenant": Annotated[str | None, typer.Option()],
    "username": Annotated[str | None, typer.Option()],
    "password": Annotated[str | None, typer.Option(help="Prefer SURREAL_STORE_PASSWORD.")],
    "schema_dir": Annotated[Path | None, typer.Option()],
}


def store_options(fn: Callable[..., None]) -> Callable[..., None]:
    """Let a command take the store options after its name too (``migrate --url X``); given
    there, they beat those given before the command."""
    signature = inspect.signature(fn, eval_str=True)
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind)
        for name, kind in _STORE_OPTIONS.items()
    ]

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> None:
        given = {name: kwargs.pop(name) for name in _STORE_OPTIONS}
        ctx: typer.Context = kwargs["ctx"]
        if ctx.obj is None:
            ctx.obj = Options()
        for f in fields(Options):
            if given.get(f.name) is not None:
                setattr(ctx.obj, f.name, given[f.name])
        fn(*args, **kwargs)

    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()]
    command.__signature__ = signature.replace(parameters=[*params, *extra])  # type: ignore[attr-defined]
    command.__annotations__ = {
        **{p.name: p.annotation for p in signature.parameters.values()},
        **_STORE_OPTIONS,
        "return": None,
    }
    return command


def program() -> str:
    """How to run this program again from the user's shell: ``surreal-store`` when that is
    what the shell finds, else the path it was run by (``.venv/bin/surreal-store``, or
    ``python -m surreal_store``), relative to the working directory when under it."""

    def shown(path: str) -> str:
        p = Path(path).absolute()
        with contextlib.suppress(ValueError):
            rel = p.relative_to(Path.cwd())
            return shlex.quote(str(rel) if rel.parent != Path(".") else f"./{rel}")
        return shlex.quote(str(p))

    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "surreal-store"
    if Path(argv0).name == "__main__.py" and Path(argv0).parent.name == "surreal_store":
        return f"{shown(sys.executable)} -m surreal_store"
    name = Path(argv0).name
    if name != "surreal-store":
        return "surreal-store"  # run by something else (a test runner): the command's name
    found = shutil.which(name)
    if found is not None and Path(found).resolve() == Path(argv0).resolve():
        return name
    return shown(argv0)


def _given(opts: Options) -> str:
    """The store options the user gave, to repeat in a command we suggest."""
    given = [("--url", opts.url), ("--ns", opts.namespace), ("--db", opts.database),
             ("--tenant", opts.tenant)]  # fmt: skip
    return "".join(f" {flag} {shlex.quote(value)}" for flag, value in given if value is not None)


def require_store(opts: Options) -> None:
    """Refuse an embedded store whose files are not there: a read-only command never creates
    one, and a mistyped path is the likeliest reason."""
    path = opts.settings().path
    if path is None:
        return
    where = path.expanduser()
    if where.is_file() or (where.is_dir() and any(where.iterdir())):
        return
    again = _given(opts)
    raise NotFoundError(
        f"no store at {where}: create one with `{program()}{again} migrate` (or `demo` for "
        "example data)"
    )


@contextlib.asynccontextmanager
async def existing_store(opts: Options) -> AsyncIterator[Store]:
    """The store opened as the library opens it (pending schema files applied), once it is
    known to exist: its files (:func:`require_store`) and, in them, its database. Opening a
    database nothing was ever stored in would create it (the schema: a new tenant)."""
    from .._config import redact_url
    from .._migrate import Migrator

    require_store(opts)
    async with opts.store(check=False) as probe:
        s = probe.settings
        if (
            not (s.is_in_memory or probe.signed_in_as.restricted)
            and not await Migrator(probe, schema_dir=opts.schema_dir).applied()
        ):
            what = f"tenant {s.tenant!r}" if s.tenant else f"database {s.database!r}"
            raise NotFoundError(
                f"no {what} in namespace {s.namespace!r} of {redact_url(s.url)}: nothing was "
                f"ever stored there; create it with `{program()}{_given(opts)} migrate`"
            )
        async with opts.store(migrate=True, check=True) as store:
            yield store


def with_store(opts: Options, fn: Callable[[Store], Awaitable[T]]) -> T:
    """Open an existing store as the library does (pending schema files applied), run ``fn``,
    close. A store that is not there is an error: reading never creates one."""

    async def go() -> T:
        async with existing_store(opts) as store:
            return await fn(store)

    return run_async(go)


# Ids a person types: the whole key, ``table:key``, or a unique prefix of the key (as git takes
# a commit's), at least this long.
_MIN_PREFIX = 6
_KEY_LENGTH = {"commit": 64, "memory": 64, "decision": 32}
_BY_PREFIX = (
    "SELECT VALUE record::id(id) FROM type::table($table) "
    "WHERE id >= type::record($table, $low) AND id < type::record($table, $high) "
    "ORDER BY id LIMIT 6;"
)


async def resolve_id(store: Store, text: str, kind: str) -> str:
    """The full key of the ``kind`` record that ``text`` names: a key, ``kind:key``, or a
    unique prefix of at least six hex characters."""
    table, sep, key = text.strip().partition(":")
    if not sep:
        key = table
    elif table != kind:
        raise ValidationError(f"{text!r} is a {table} id, but a {kind} id is expected here")
    full = _KEY_LENGTH[kind]
    if not HEX.match(key) or len(key) >= full:
        return key  # a whole key, or none at all: the library checks it and says which
    refused = agent_refusal(store, "commits", "get") if kind == "commit" else None
    if refused is not None:
        raise refused  # as commits.get would, for a whole key
    key = key.lower()
    if len(key) < _MIN_PREFIX:
        raise ValidationError(f"give at least {_MIN_PREFIX} hex characters of the {kind} id")
    found = await store.query(_BY_PREFIX, str, table=kind, low=key, high=key + "g")
    if not found:
        if store.signed_in_as.restricted:
            raise NotVisibleError(
                f"no {kind} id starts with {key} (or not visible to this sign-in)"
            )
        raise NotFoundError(f"no {kind} id starts with {key}")
    if len(found) > 1:
        shown = ", ".join(f[:12] for f in found[:5]) + (", ..." if len(found) > 5 else "")
        raise ValidationError(f"{kind} id prefix {key} is ambiguous: {shown}; give more characters")
    return found[0]


def embedder_for(space: memory.EmbeddingSpace | None) -> memory.Embedder | None:
    """The store's own embedder, as the MCP server's ``--embedder auto`` finds it (the
    built-in one for the demo's space), except that a command downloads no model: a space may
    name a model the Hub does not have (an API's), and a command that reads should not wait
    on the network. Without one, recall falls back to full text and says so on stderr."""

    def missing(reason: str) -> None:
        assert space is not None
        err.print(
            f"note: full-text recall: the store's model {space.writing_model} is not "
            f"available here ({reason})",
            markup=False,
            highlight=False,
        )

    return own_embedder(space, missing=missing, download=False)
