"""Value types shared by the client and the domain modules (free of any SDK import)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Final, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, GetCoreSchemaHandler
from pydantic import ValidationError as PydanticValidationError
from pydantic._internal._model_construction import ModelMetaclass
from pydantic_core import core_schema

from ._errors import ValidationError

__all__ = [
    "JSON_NULL",
    "MAX_JSON_DEPTH",
    "Key",
    "Model",
    "RecordId",
    "canonical_json",
    "check_text",
    "json_value",
]

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_]+$")


def _array_key(text: str, rest: str) -> list[Any]:
    """An array key as ``str(RecordId)`` prints it (a Python list of strings and integers)."""
    import ast

    try:
        value = ast.literal_eval(rest) if len(rest) <= 1024 else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = None
    if not isinstance(value, list) or not all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in value
    ):
        raise ValidationError(f"invalid record id {text!r}")
    return value


@dataclass(frozen=True, slots=True)
class RecordId:
    """A record's identity: its table and its key (a string, integer, array or object).

    The client converts to and from the SDK's own type at its boundary, so domain code and users
    never need the SDK. ``str(RecordId("commit", "abc"))`` is ``commit:abc``.
    """

    table: str
    key: str | int | list[Any] | dict[str, Any]

    def __post_init__(self) -> None:
        if not isinstance(self.table, str) or not _TABLE.match(self.table):
            raise ValidationError(f"invalid table name {self.table!r}")
        if isinstance(self.key, bool) or not isinstance(self.key, str | int | list | dict):
            raise ValidationError(f"invalid record key {self.key!r} for table {self.table!r}")

    def __hash__(self) -> int:
        return hash((self.table, _freeze(self.key)))

    def __str__(self) -> str:
        key = self.key
        if isinstance(key, int) or (isinstance(key, str) and _PLAIN_KEY.match(key)):
            return f"{self.table}:{key}"
        if isinstance(key, str):
            return f"{self.table}:⟨{key.replace('⟩', chr(92) + '⟩')}⟩"
        return f"{self.table}:{key!r}"

    @classmethod
    def parse(cls, text: str, *, table: str | None = None) -> RecordId:
        """Parse ``table:key`` (a plain or ``⟨escaped⟩`` string key, an integer, or an array of
        strings and integers as ``str()`` prints it: ``run_event:['r1', 3]``).

        With ``table`` given, a bare key is accepted too, and a prefixed one must match it.
        """
        if not isinstance(text, str) or not text:
            raise ValidationError(f"invalid record id {text!r}")
        head, sep, rest = text.partition(":")
        if not sep:
            if table is None:
                raise ValidationError(f"invalid record id {text!r}: expected table:key")
            head, rest = table, text
        elif table is not None and head != table:
            raise ValidationError(f"record id {text!r} is not in table {table!r}")
        key: str | int | list[Any]
        if rest.startswith("[") and rest.endswith("]"):
            key = _array_key(text, rest)
        elif rest.startswith("⟨") and rest.endswith("⟩"):
            key = rest[1:-1].replace(chr(92) + "⟩", "⟩")
        elif rest.isdigit() and not (len(rest) > 1 and rest.startswith("0")):
            key = int(rest)
        elif _PLAIN_KEY.match(rest):
            key = rest
        else:
            raise ValidationError(f"invalid record id {text!r}")
        return cls(head, key)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def from_str(value: str) -> RecordId:
            return cls.parse(value)

        return core_schema.json_or_python_schema(
            json_schema=core_schema.no_info_after_validator_function(
                from_str, core_schema.str_schema()
            ),
            python_schema=core_schema.union_schema(
                [
                    core_schema.is_instance_schema(cls),
                    core_schema.no_info_after_validator_function(
                        from_str, core_schema.str_schema()
                    ),
                ]
            ),
            serialization=core_schema.plain_serializer_function_ser_schema(
                _serialise, info_arg=True
            ),
        )


def _serialise(value: RecordId, info: core_schema.SerializationInfo) -> Any:
    # Python mode keeps the object (it is sent to the database as a record link); JSON mode
    # writes the readable ``table:key`` form, which ``parse`` reads back.
    return value if info.mode == "python" else str(value)


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


class _JsonNull:
    """JSON ``null`` as a value. A plain ``None`` is sent as SurrealDB ``NONE`` (the field is
    absent), so JSON documents that must keep their nulls send this instead."""

    _instance: _JsonNull | None = None

    def __new__(cls) -> _JsonNull:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "JSON_NULL"


JSON_NULL = _JsonNull()


def check_text(value: Any, what: str, *, empty: bool = False, limit: int | None = None) -> str:
    """``value`` checked to be a string the database can store: text that encodes as UTF-8
    (no lone surrogates), not empty unless ``empty``, at most ``limit`` characters."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, not {type(value).__name__}")
    if not empty and not value:
        raise ValidationError(f"{what} must not be empty")
    if limit is not None and len(value) > limit:
        raise ValidationError(f"{what} is longer than {limit} characters")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            raise ValidationError(
                f"{what} is not valid text: {exc.reason} at position {exc.start}"
            ) from None
    return value


def canonical_json(value: Any, *, what: str = "value") -> str:
    """The canonical JSON text of ``value`` (sorted keys, no insignificant whitespace), which
    must read back as ``value``: a tuple is an array (it reads back as a list, as everywhere a
    value is stored); keys that are not strings (``{1: 2}`` would come back as ``{"1": 2}``),
    NaN, infinities and text that is not UTF-8 are refused."""
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        text.encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what} is not JSON: {exc}") from None
    # json.dumps writes any key as a string and a tuple as an array: reading the text back is
    # the exact check, and costs less than walking the value in Python.
    back = json.loads(text)
    if back != value and back != _lists(value):
        raise ValidationError(
            f"{what} would not read back as written: keys must be strings "
            "(a key 1 or None would come back as the string '1' or 'null')"
        )
    return text


def _lists(value: Any) -> Any:
    """``value`` with its tuples as lists, at any depth."""
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return value


MAX_JSON_DEPTH: Final = 64
"""How deeply a JSON value (a fact's value, an entity's attributes, a memory's metadata, an
event's payload...) may nest lists and objects. The engine refuses a request nested about 100
levels deep, counting what wraps the value on its way (measured on 3.2.4: a bare parameter
failed at 98 levels, a fact's value at 96); 64 leaves room for that wrapping."""


def json_value(value: Any, *, what: str = "value", depth: int = 0) -> Any:
    """``value`` checked to be JSON (dicts with string keys, lists, str, int, float, bool,
    None) nested at most :data:`MAX_JSON_DEPTH` levels, with every ``None`` replaced by
    :data:`JSON_NULL`, so it round-trips exactly."""
    if value is None:
        return JSON_NULL
    if isinstance(value, str):
        return check_text(value, what, empty=True)
    if isinstance(value, bool | int):
        if type(value) is int and not -(2**63) <= value < 2**63:
            raise ValidationError(f"{what} is out of the 64-bit integer range: {value}")
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValidationError(f"{what} is not JSON: {value!r}")
        return value
    if isinstance(value, list | tuple | dict) and depth >= MAX_JSON_DEPTH:
        raise ValidationError(
            f"{what} nests lists and objects more than {MAX_JSON_DEPTH} levels deep"
        )
    if isinstance(value, list | tuple):
        return [json_value(v, what=what, depth=depth + 1) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValidationError(f"{what} is not JSON: key {k!r} is not a string")
            key = check_text(k, f"a key of {what}", empty=True)
            out[key] = json_value(v, what=what, depth=depth + 1)
        return out
    raise ValidationError(f"{what} is not JSON: {type(value).__name__} {value!r}")


def _record_key(value: Any) -> Any:
    return value.key if isinstance(value, RecordId) else value


Key = Annotated[str, BeforeValidator(_record_key)]
"""A record link read as its (string) key, e.g. ``commit:ab12...`` -> ``"ab12..."``."""


class _ModelType(ModelMetaclass):
    # Construction is wrapped here, not in __init__: a model with its own __init__ makes
    # pydantic call it for every row it validates, which would slow every read.
    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except PydanticValidationError as exc:
            raise ValidationError(describe(cls.__name__, exc)) from None


class Model(BaseModel, metaclass=_ModelType):
    """The base of every public model: a value that does not fit raises our
    :class:`ValidationError` (``RunTrace(seq=0)``), never pydantic's own error."""

    # Model itself is never validated, so it is built when first used: importing the package
    # then builds no schema (pydantic's first build loads its plugins, with importlib.metadata).
    # Its subclasses build when they are defined (the flag is reset below).
    model_config = ConfigDict(defer_build=True)

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate(obj, **kwargs)
        except PydanticValidationError as exc:
            raise ValidationError(describe(cls.__name__, exc)) from None

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> Self:
        try:
            return super().model_validate_json(json_data, **kwargs)
        except PydanticValidationError as exc:
            raise ValidationError(describe(cls.__name__, exc)) from None


Model.model_config["defer_build"] = False


def describe(what: str, exc: PydanticValidationError) -> str:
    """One line per problem of a pydantic error, without its links to pydantic's site."""
    problems = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(part) for part in err["loc"]) or "value"
        problems.append(f"{where}: {err['msg']}")
    return f"invalid {what}: " + "; ".join(problems)
