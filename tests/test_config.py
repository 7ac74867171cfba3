"""Settings: typed, named errors, secrets never printed, dev state generated once."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from server.app import create_app
from server.config import Settings, load_settings
from server.errors import ConfigError
from server.vault.keyring import LocalKeyring


def test_bad_setting_names_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOS_PORT", "eighty")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert "CUSTOS_PORT" in error.value.message


def test_database_url_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOS_DATABASE_URL", "mysql://x")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert "CUSTOS_DATABASE_URL" in error.value.message


def test_plain_urls_get_async_drivers() -> None:
    assert Settings(database_url="sqlite:///./x.db").database_url == "sqlite+aiosqlite:///./x.db"
    assert Settings(database_url="postgresql://u@h/d").database_url == "postgresql+asyncpg://u@h/d"


def test_secrets_never_print(tmp_path: Path) -> None:
    settings = Settings(jwt_secret="super-secret-value-123", state_dir=tmp_path)
    assert "super-secret-value-123" not in repr(settings)
    assert "super-secret-value-123" not in str(settings.model_dump())
    keyring = LocalKeyring.load(tmp_path / "k.json", create=True)
    assert "k.json" in repr(keyring)
    assert (tmp_path / "k.json").read_text() not in repr(keyring)


def test_dev_generates_secrets_once_with_private_modes(tmp_path: Path) -> None:
    settings = Settings(
        env="dev", state_dir=tmp_path / "state", keyring=tmp_path / "state" / "keyring.json"
    )
    first = settings.jwt_secret_value()
    again = Settings(env="dev", state_dir=tmp_path / "state").jwt_secret_value()
    assert first == again
    LocalKeyring.load(settings.keyring, create=True)
    for path in (tmp_path / "state" / "jwt_secret", settings.keyring):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "state").st_mode) == 0o700


def test_prod_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    settings = Settings(env="prod", state_dir=tmp_path, keyring=tmp_path / "missing.json")
    with pytest.raises(ConfigError) as error:
        create_app(settings, migrate=False)
    assert "CUSTOS_KEYRING" in error.value.message
    LocalKeyring.load(tmp_path / "present.json", create=True)
    settings = Settings(env="prod", state_dir=tmp_path, keyring=tmp_path / "present.json")
    with pytest.raises(ConfigError) as error:
        create_app(settings, migrate=False)
    assert "CUSTOS_JWT_SECRET" in error.value.message
    assert not (tmp_path / "jwt_secret").exists()


@pytest.mark.slow
def test_cli_reports_a_bad_setting_without_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "CUSTOS_WORKERS": "0", "CUSTOS_STATE_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "token", "--role", "agent", "--subject", "a"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "CUSTOS_WORKERS" in result.stderr
    assert "Traceback" not in result.stderr
