"""Users and agents: who may sign in to a tenant, and as what."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .._client import Store
from .._errors import NotFoundError, ValidationError
from ._app import Group, Options, app, existing_store, fail, run_async, store_options
from ._lazy import access, agents
from ._render import out, print_json, print_rows

users = typer.Typer(
    help=(
        "Who may sign in to the tenant: people with a role (viewer, editor, owner), agents "
        "with the scopes they may use. Needs the owner (or an embedded store's files)."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    cls=Group,
)
app.add_typer(users, name="users")


def _read_secret(what: str) -> str:
    """A password from standard input (one line, for scripts) or a hidden prompt; never an
    option, which would show in process lists and shell history."""
    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            fail(f"no {what} on standard input")
        return line
    secret: str = typer.prompt(what.capitalize(), hide_input=True, confirmation_prompt=True)
    return secret


@users.command("add")
@store_options
def add(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="User name, or the agent's id with --agent.")
    ],
    role: Annotated[
        str | None, typer.Option(help="viewer (reads), editor (reads and writes), owner.")
    ] = None,
    agent: Annotated[
        bool, typer.Option("--agent", help="An agent, signing in with a secret (record access).")
    ] = False,
    scope: Annotated[
        list[str] | None, typer.Option(help="A scope the agent may use (repeat for more).")
    ] = None,
    replace: Annotated[
        bool, typer.Option(help="Replace an existing user's password and role.")
    ] = False,
) -> None:
    """Add a user with a role, or let an agent sign in with the scopes it may use. The password
    or secret is read from standard input or a hidden prompt."""
    opts: Options = ctx.obj
    if agent == (role is not None):
        fail("give --role for a user, or --agent with --scope for an agent")
    if agent and not scope:
        fail("an agent needs at least one --scope")
    if not agent and scope:
        fail("--scope is for agents (--agent)")
    secret = _read_secret("secret" if agent else "password")

    async def go() -> str:
        async with opts.store(migrate=True, check=True) as s:
            if agent:
                return await _grant(s, name, secret, scope or [])
            if role not in access.ROLES:
                raise ValidationError(f"unknown role {role!r}; one of {', '.join(access.ROLES)}")
            user = await access.add_user(s, name=name, password=secret, role=role, replace=replace)
            return f"user {user.name} added ({user.role})"

    out.print(run_async(go))


async def _grant(s: Store, name: str, secret: str, scopes: list[str]) -> str:
    try:
        await agents.get(s, agent_id=name)
    except NotFoundError:
        await agents.register(s, name=name, kind="agent", agent_id=name)
    grant = await access.grant_agent(s, agent_id=name, secret=secret, scopes=scopes)
    return f"agent {grant.agent} may sign in; scopes: {', '.join(grant.scopes)}"


@users.command("list")
@store_options
def list_(ctx: typer.Context, json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Users with their roles, and agents with their scopes."""
    opts: Options = ctx.obj

    async def go() -> tuple[list[access.User], list[access.AgentGrant]]:
        async with existing_store(opts) as s:
            return await access.list_users(s), await access.list_agents(s)

    people, bots = run_async(go)
    if json:
        print_json(
            {
                "users": [u.model_dump(mode="json") for u in people],
                "agents": [a.model_dump(mode="json") for a in bots],
            }
        )
        return
    rows = [[u.name, "user", u.role.lower()] for u in people]
    rows += [[a.agent, "agent", ", ".join(a.scopes)] for a in bots]
    if not rows:
        out.print("no users or agents: the store is open to anyone who can open it")
        return
    print_rows(["name", "kind", "role / scopes"], rows, text="role / scopes")


@users.command("remove")
@store_options
def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="User name, or the agent's id.")],
    agent: Annotated[bool, typer.Option("--agent", help="Revoke an agent's sign-in.")] = False,
) -> None:
    """Remove a user, or revoke an agent's secret and scopes (its records stay)."""
    opts: Options = ctx.obj

    async def go() -> str:
        async with existing_store(opts) as s:
            if agent:
                await access.revoke_agent(s, agent_id=name)
                return f"agent {name} can no longer sign in"
            await access.remove_user(s, name=name)
            return f"user {name} removed"

    out.print(run_async(go))
