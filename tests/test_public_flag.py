"""The flag on the public wrapper for what agents may not call: it belongs to the function,
not to the module it lives in, so moving a module cannot silently drop the refusal."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from surreal_store import (
    PermissionDeniedError,
    SignIn,
    access,
    agents,
    branches,
    cas,
    ci,
    commits,
    memory,
    provenance,
    releases,
    runs,
)
from surreal_store._api import public

pytestmark = pytest.mark.anyio

CLOSED = (commits, branches, releases, ci, cas)
OPEN = (memory, provenance, runs, agents, access)


class _Session:
    """Anything with a sign-in: the refusal comes before a query would be sent."""

    def __init__(self, signin: SignIn) -> None:
        self.signed_in_as = signin
        self.sent: list[str] = []

    async def execute(self, text: str, /, **params: Any) -> list[Any]:
        self.sent.append(text)
        return []


def _functions(module: Any) -> list[Any]:
    return [getattr(module, name) for name in module.__all__ if callable(getattr(module, name))]


def test_every_query_of_the_closed_domains_carries_the_flag() -> None:
    for module in CLOSED:
        queries = [f for f in _functions(module) if inspect.iscoroutinefunction(f)]
        assert queries, module.__name__
        for fn in queries:
            assert getattr(fn, "closed_to_agents", None) is True, f"{module.__name__}.{fn.__name__}"


def test_the_open_domains_do_not_carry_it() -> None:
    for module in OPEN:
        for fn in _functions(module):
            assert getattr(fn, "closed_to_agents", False) is False, fn.__name__


async def test_the_refusal_follows_the_function_wherever_its_module_is() -> None:
    async def snapshot(db: _Session, *, name: str) -> list[Any]:
        return await db.execute("CREATE thing SET name = $name", name=name)

    snapshot.__module__ = "somewhere.else.entirely"
    closed = public(agents=False)(snapshot)
    agent = _Session(SignIn("agent", "scout"))
    with pytest.raises(PermissionDeniedError, match="nothing was sent"):
        await closed(agent, name="x")
    assert agent.sent == []
    editor = _Session(SignIn("user", "ana", "EDITOR"))
    assert await closed(editor, name="x") == []
    assert editor.sent == ["CREATE thing SET name = $name"]
    assert await public(snapshot)(agent, name="y") == []  # not flagged: the engine decides


async def test_a_closed_domain_function_refuses_an_agent_before_sending() -> None:
    agent = _Session(SignIn("agent", "scout"))
    with pytest.raises(PermissionDeniedError, match=r"commits\.log: an agent's sign-in"):
        await commits.log(agent, branch="main")  # type: ignore[arg-type]
    assert agent.sent == []


async def test_the_refusal_holds_when_the_store_is_passed_by_name() -> None:
    agent = _Session(SignIn("agent", "scout"))
    with pytest.raises(PermissionDeniedError, match=r"cas\.put: an agent's sign-in"):
        await cas.put(db=agent, data=b"agent blob")  # type: ignore[arg-type]
    with pytest.raises(PermissionDeniedError, match=r"commits\.log: an agent's sign-in"):
        await commits.log(db=agent, branch="main")  # type: ignore[arg-type]
    assert agent.sent == []


def test_only_a_function_that_queries_can_be_closed() -> None:
    def pure(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="closed to agents"):
        public(agents=False)(pure)


async def test_remembering_on_a_branch_is_refused_to_an_agent_as_branches_are() -> None:
    """``branch=`` reads the branch's head, which the engine hides from an agent (it would read
    as "no branch main"): refused as branches.head is, before anything is sent."""
    agent = _Session(SignIn("agent", "scout"))
    with pytest.raises(PermissionDeniedError, match=r"branches\.head: an agent's sign-in"):
        await memory.remember(agent, content="x", scope="scout", branch="main")  # type: ignore[arg-type]
    items = [memory.NewMemory(content="x", scope="scout")]
    with pytest.raises(PermissionDeniedError, match=r"branches\.head: an agent's sign-in"):
        await memory.remember_many(agent, items, branch="main")  # type: ignore[arg-type]
    assert agent.sent == []


async def test_the_cli_refuses_an_agent_a_commit_by_prefix_as_by_its_id() -> None:
    from surreal_store._cli._app import resolve_id

    agent = _Session(SignIn("agent", "scout"))
    with pytest.raises(PermissionDeniedError, match=r"commits\.get: an agent's sign-in"):
        await resolve_id(agent, "2ff03a32", "commit")  # type: ignore[arg-type]
    assert agent.sent == []
