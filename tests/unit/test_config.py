from __future__ import annotations

from pathlib import Path

import pytest

from surreal_store import ConfigError, Settings, Store, default_data_dir


def test_defaults_to_an_embedded_store_in_the_user_data_dir(tmp_path: Path) -> None:
    s = Settings.load()
    assert s.is_embedded
    assert s.url == f"surrealkv://{tmp_path / 'xdg' / 'surreal-store' / 'default'}"
    assert s.path == default_data_dir() / "default"


def test_environment_is_read_with_prefix(env: pytest.MonkeyPatch) -> None:
    env.setenv("SURREAL_STORE_URL", "mem://")
    env.setenv("SURREAL_STORE_NAMESPACE", "team")
    env.setenv("SURREAL_STORE_MAX_ATTEMPTS", "7")
    s = Settings.load()
    assert (s.url, s.namespace, s.max_attempts) == ("mem://", "team", 7)


def test_explicit_arguments_beat_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("SURREAL_STORE_URL", "mem://")
    env.setenv("SURREAL_STORE_DATABASE", "fromenv")
    s = Settings.load(url="ws://db.example:8000", database=None)
    assert s.url == "ws://db.example:8000"
    assert s.database == "fromenv"  # None means "not given"
    assert Store(database="explicit").settings.database == "explicit"


def test_password_never_appears_in_reprs(env: pytest.MonkeyPatch) -> None:
    env.setenv("SURREAL_STORE_PASSWORD", "hunter2")
    s = Settings.load(url="ws://root:urlsecret@db:8000", username="root")
    assert s.password is not None and s.password.get_secret_value() == "hunter2"
    for text in (repr(s), str(s), repr(Store(settings=s))):
        assert "hunter2" not in text
        assert "urlsecret" not in text
    assert "***" in repr(s)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"url": "rocksdb://x"}, "unsupported URL scheme"),
        ({"url": "surrealkv://"}, "names no path"),
        ({"url": "ws://"}, "names no host"),
        ({"namespace": "bad name;"}, "namespace"),
        ({"username": "root"}, "username and password go together"),
        ({"max_attempts": 0}, "max_attempts"),
    ],
)
def test_invalid_settings_raise_config_error(overrides: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        Settings.load(**overrides)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


def test_replace_validates() -> None:
    s = Settings.load(url="mem://")
    assert s.replace(namespace="other").namespace == "other"
    with pytest.raises(ConfigError):
        s.replace(url="nope")


def test_scratch_settings_drop_credentials() -> None:
    s = Settings.load(url="ws://db:8000", username="root", password="pw", namespace="team")
    scratch = s.scratch()
    assert (scratch.url, scratch.username, scratch.password) == ("mem://", None, None)
    assert (scratch.namespace, scratch.database) == ("team", s.database)
