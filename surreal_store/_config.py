"""Settings: explicit arguments, then ``SURREAL_STORE_*`` environment variables, then defaults."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ._errors import ConfigError

__all__ = ["EMBEDDED_SCHEMES", "REMOTE_SCHEMES", "Settings", "default_data_dir", "redact_url"]

EMBEDDED_SCHEMES = frozenset({"mem", "memory", "surrealkv", "surrealkv+versioned", "file"})
REMOTE_SCHEMES = frozenset({"ws", "wss", "http", "https"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def default_data_dir() -> Path:
    """The per-user data directory that holds the default embedded store."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "surreal-store"


def _default_url() -> str:
    return f"surrealkv://{default_data_dir() / 'default'}"


def url_scheme(url: str) -> str:
    """The lower-cased scheme of ``url`` (``memory`` counts as a scheme of its own)."""
    if url == "memory":
        return "memory"
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep else ""


def redact_url(url: str) -> str:
    """``url`` with any password in it replaced by ``***``, safe for reprs and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class Settings(BaseSettings):
    """Connection and behaviour settings.

    Every field can be set by an environment variable named ``SURREAL_STORE_<FIELD>``
    (``SURREAL_STORE_URL``, ``SURREAL_STORE_PASSWORD``, ...); explicit arguments win.
    """

    model_config = SettingsConfigDict(
        env_prefix="SURREAL_STORE_", extra="forbid", frozen=True, validate_default=True
    )

    url: str = Field(default_factory=_default_url)
    """``mem://``, ``surrealkv://PATH``, ``surrealkv+versioned://PATH``, ``ws(s)://HOST:PORT``."""
    namespace: str = "surreal_store"
    database: str = "main"
    tenant: str | None = None
    """A tenant is a database of its own: ``tenant="acme"`` opens (and migrates) database
    ``acme``. Names compare whole; nothing in the API reaches another tenant."""
    username: str | None = None
    """A database user of the tenant (``surreal-store users add``) or, failing that, a root
    user of a server."""
    password: SecretStr | None = None
    agent: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,128}$")
    """Sign in as this agent (record access ``agent``): the schema's permissions then bind
    every query to the agent's granted scopes, its decisions and its runs."""
    agent_secret: SecretStr | None = None
    max_attempts: int = Field(default=5, ge=1, le=100)
    """Attempts per retryable call, the first included."""
    retry_initial_s: float = Field(default=0.02, gt=0)
    retry_max_s: float = Field(default=1.0, gt=0)
    query_timeout_s: float | None = Field(default=120.0, gt=0)
    """Per-call timeout; ``None`` waits for ever. A timed-out write has an unknown outcome."""
    connect_timeout_s: float = Field(default=30.0, gt=0)
    migration_lock_timeout_s: float = Field(default=120.0, gt=0)
    """How long a migrator waits for another one to finish before giving up."""
    migration_lock_ttl_s: float = Field(default=30.0, ge=1)
    """A migration lock not renewed for this long is considered abandoned (crashed holder)."""
    auto_migrate: bool = True
    """Apply pending schema files when a store opens (otherwise only check them)."""
    embedding_model: str | None = Field(default=None, min_length=1, max_length=256)
    """The embedding model this application writes with. With ``embedding_dimension``, a store
    declares this space on first open and refuses to open on a store declared with another."""
    embedding_dimension: int | None = Field(default=None, ge=1, le=16384)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip()
        scheme = url_scheme(value)
        if scheme not in EMBEDDED_SCHEMES | REMOTE_SCHEMES:
            known = ", ".join(sorted(EMBEDDED_SCHEMES | REMOTE_SCHEMES))
            raise ValueError(
                f"unsupported URL scheme in {redact_url(value)!r}; use one of: {known}"
            )
        if scheme in {"surrealkv", "surrealkv+versioned", "file"} and not value.partition("://")[2]:
            raise ValueError(f"{value!r} names no path")
        if scheme in REMOTE_SCHEMES and not urlsplit(value).hostname:
            raise ValueError(f"{redact_url(value)!r} names no host")
        return value

    @field_validator("namespace", "database", "tenant")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError(f"{value!r} is not a valid name (letters, digits and _, max 64)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _tenant_is_database(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("tenant") is not None:
            tenant, database = data["tenant"], data.get("database")
            if database not in (None, "main", tenant):
                raise ValueError(
                    f"tenant {tenant!r} and database {database!r} disagree: a tenant is a "
                    "database, give one of them"
                )
            data = {**data, "database": tenant}
        return data

    @model_validator(mode="after")
    def _check_credentials(self) -> Settings:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if (self.agent is None) != (self.agent_secret is None):
            raise ValueError("agent and agent_secret go together")
        if self.agent is not None and self.username is not None:
            raise ValueError("sign in as a user or as an agent, not both")
        if (self.embedding_model is None) != (self.embedding_dimension is None):
            raise ValueError("embedding_model and embedding_dimension go together")
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError("retry_max_s must be at least retry_initial_s")
        return self

    @property
    def scheme(self) -> str:
        return url_scheme(self.url)

    @property
    def is_embedded(self) -> bool:
        """Whether the engine runs in this process (``mem://``, ``surrealkv://``, ``file://``)."""
        return self.scheme in EMBEDDED_SCHEMES

    @property
    def is_in_memory(self) -> bool:
        """Whether the store lives in this process's memory only (``mem://``)."""
        return self.scheme in {"mem", "memory"}

    @property
    def path(self) -> Path | None:
        """The directory of a file-backed embedded store, else ``None``."""
        if self.scheme in {"surrealkv", "surrealkv+versioned", "file"}:
            return Path(self.url.partition("://")[2])
        return None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "url" else value

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Settings from the environment, with the non-``None`` ``overrides`` winning.

        Invalid settings raise :class:`ConfigError` (a ``ValueError``) with one readable line.
        """
        from pydantic import ValidationError as PydanticValidationError

        explicit = {k: v for k, v in overrides.items() if v is not None}
        try:
            return cls(**explicit)
        except PydanticValidationError as exc:
            raise ConfigError(_one_line(exc)) from None

    def scratch(self) -> Settings:
        """These settings for a private in-memory database: same namespace and database, no
        credentials (an embedded engine has no users to sign in as)."""
        data = self.model_dump()
        data.update(
            url="mem://",
            username=None,
            password=None,
            agent=None,
            agent_secret=None,
            auto_migrate=False,
        )
        return type(self).model_validate(data)

    def replace(self, **overrides: Any) -> Settings:
        """A copy with the non-``None`` ``overrides`` applied and validated."""
        from pydantic import ValidationError as PydanticValidationError

        data = self.model_dump()
        explicit = {k: v for k, v in overrides.items() if v is not None}
        if "tenant" in explicit and "database" not in explicit:
            data["database"] = explicit["tenant"]  # a new tenant is a new database
        data.update(explicit)
        try:
            return type(self).model_validate(data)
        except PydanticValidationError as exc:
            raise ConfigError(_one_line(exc)) from None


def _one_line(exc: Any) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    parts = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "settings"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "invalid settings: " + "; ".join(parts)
