"""Every public function, fed hostile values: only StoreError subclasses may leave it.

The walk reads each public module's ``__all__``, and for every function draws a value for each
parameter from a pool of hostile and unlucky values (lone surrogates, huge integers, NaN, keys
that are not strings, wrong types, ids of the wrong kind...), or leaves the default. It may
return normally or raise a :class:`StoreError`; anything else fails the test."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import surreal_store
from surreal_store import (
    RecordId,
    Store,
    StoreError,
    agents,
    branches,
    bundles,
    cas,
    ci,
    commits,
    memory,
    provenance,
    releases,
    runs,
)

_MODULES = [agents, branches, bundles, cas, ci, commits, memory, provenance, releases, runs]

_surrogate = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3)
_texts = st.one_of(
    st.text(max_size=8),
    _surrogate,
    st.builds(lambda a, b: a + b, st.text(max_size=4), _surrogate),
    st.sampled_from(["", " ", "\x00", "a" * 70, "memory:abc", "commit:" + "a" * 64, "ab" * 32]),
    st.sampled_from(["main", "x:y", "⟨⟩", "'; DELETE memory; --", "$x", "../../etc/passwd"]),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=4),
    _texts,
    st.just(object()),
    st.just(dt.datetime(2026, 1, 1)),  # naive
    st.just(dt.timedelta(seconds=-1)),
    st.sampled_from([RecordId("memory", "x"), RecordId("run_event", ["r", 1])]),
)
_keys = st.one_of(_texts, st.integers(), st.none(), st.booleans(), st.floats(allow_nan=False))
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner),
        st.frozensets(st.integers(), max_size=2),
        st.dictionaries(_keys, inner, max_size=3),
    ),
    max_leaves=6,
)


def _public_functions() -> list[tuple[str, Callable[..., Any]]]:
    found: list[tuple[str, Callable[..., Any]]] = []
    for module in _MODULES:
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                found.append((f"{module.__name__.rsplit('.', 1)[1]}.{name}", obj))
    return found


_FUNCTIONS = dict(_public_functions())
_MODELS = {
    name: obj
    for module in [*_MODULES, surreal_store]
    for name in module.__all__
    if isinstance(obj := getattr(module, name), type)
    and issubclass(obj, surreal_store._types.Model)
    and not name.startswith("_")
}


class _Engine:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.loop = asyncio.new_event_loop()
        self.store = Store("mem://")
        self.loop.run_until_complete(self.store.open())

    def call(self, fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            return self.loop.run_until_complete(asyncio.wait_for(result, 60))
        return result

    def close(self) -> None:
        self.loop.run_until_complete(self.store.aclose())
        self.loop.close()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Engine]:
    engine = _Engine(tmp_path_factory.mktemp("hostile"))
    yield engine
    engine.close()


def _paths(root: Path) -> st.SearchStrategy[Any]:
    # Paths stay inside the test's directory: hostile, but never somewhere real.
    return st.one_of(
        st.builds(lambda t: root / f"b-{t}", st.text("abc\ud800", min_size=1, max_size=3)),
        st.sampled_from([root, root / "missing" / "deeper", 3, None, b"bytes"]),
    )


_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@pytest.mark.parametrize("name", sorted(_FUNCTIONS))
def test_public_functions_raise_only_store_errors(engine: _Engine, name: str) -> None:
    fn = _FUNCTIONS[name]
    params = list(inspect.signature(fn).parameters.values())

    @_SETTINGS
    @given(data=st.data())
    def walk(data: st.DataObject) -> None:
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for p in params:
            if p.name in ("db", "store"):
                value: Any = engine.store
            elif p.name == "path":
                value = data.draw(_paths(engine.root), label=p.name)
            elif p.default is not inspect.Parameter.empty and data.draw(st.booleans()):
                continue  # keep the default: gets past one check, to the next
            else:
                value = data.draw(_values, label=p.name)
            if p.kind is inspect.Parameter.KEYWORD_ONLY:
                kwargs[p.name] = value
            else:
                args.append(value)
        with contextlib.suppress(StoreError):
            engine.call(fn, args, kwargs)

    walk()


@pytest.mark.parametrize("name", sorted(_MODELS))
def test_public_models_raise_only_store_errors(name: str) -> None:
    model = _MODELS[name]

    @_SETTINGS
    @given(fields=st.dictionaries(st.sampled_from(list(model.model_fields)), _values, max_size=4))
    def walk(fields: dict[str, Any]) -> None:
        with contextlib.suppress(StoreError):
            model(**fields)
        with contextlib.suppress(StoreError):
            model.model_validate(fields)

    walk()


@given(url=st.one_of(_texts, st.sampled_from(["ws://", "surrealkv://", "mem://x\ud800", "ftp:"])))
@settings(max_examples=40, deadline=None, database=None)
def test_store_settings_raise_only_store_errors(url: str) -> None:
    with contextlib.suppress(StoreError):
        Store(url, namespace=url, database=url)


def test_lone_surrogates_are_refused_before_anything_is_written(engine: _Engine) -> None:
    from surreal_store import ValidationError

    async def scenario() -> None:
        store = engine.store
        before = await store.query_required_single("RETURN count(SELECT id FROM memory);", int)
        for content, scope in (("tea \ud800", "default"), ("tea", "\udfff")):
            with pytest.raises(ValidationError, match="not valid text"):
                await memory.remember(store, content=content, scope=scope)
        with pytest.raises(ValidationError):
            await commits.commit(store, state={"k": "\ud800"}, message="m", author="a")
        with pytest.raises(ValidationError):
            await memory.recall(store, text="\ud800")
        after = await store.query_required_single("RETURN count(SELECT id FROM memory);", int)
        assert after == before

    engine.loop.run_until_complete(scenario())


_STORE_METHODS = ["query", "query_single", "query_required_single", "execute"]


@pytest.mark.parametrize("method", _STORE_METHODS)
def test_store_methods_raise_only_store_errors(engine: _Engine, method: str) -> None:
    call = getattr(engine.store, method)

    @_SETTINGS
    @given(
        text=st.one_of(_texts, _scalars, st.just("RETURN $p"), st.just("SELECT * FROM $p")),
        into=st.one_of(st.sampled_from([int, str, dict, list, RecordId]), _scalars),
        params=st.dictionaries(st.sampled_from(["p", "q", "idempotent"]), _values, max_size=2),
    )
    def walk(text: Any, into: Any, params: dict[str, Any]) -> None:
        args = [text] if method == "execute" else [text, into]
        with contextlib.suppress(StoreError):
            engine.call(call, args, params)

    walk()
