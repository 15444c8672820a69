"""Settings: FLUXWARDEN_* environment, the YAML config file, and their precedence."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.auth import hash_key
from service.settings import Settings


def test_environment_variables_use_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """FLUXWARDEN_MAX_N sets max_n."""
    monkeypatch.setenv("FLUXWARDEN_MAX_N", "2")
    assert Settings().max_n == 2


def test_config_file_sets_tenants(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A YAML config named by FLUXWARDEN_CONFIG supplies tenants and their hashed keys."""
    config = tmp_path / "service.yaml"
    config.write_text(
        f"port: 9001\ntenants:\n  acme:\n    policy: strict\n    keys: [{{id: k1, sha256: {hash_key('k')}}}]\n"
    )
    monkeypatch.setenv("FLUXWARDEN_CONFIG", str(config))
    settings = Settings()
    assert (settings.port, settings.tenants["acme"].policy, settings.auth_enabled) == (9001, "strict", True)


def test_environment_beats_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An environment variable overrides the same setting in the config file."""
    config = tmp_path / "service.yaml"
    config.write_text("port: 9001\n")
    monkeypatch.setenv("FLUXWARDEN_CONFIG", str(config))
    monkeypatch.setenv("FLUXWARDEN_PORT", "9002")
    assert Settings().port == 9002


def test_missing_config_file_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """FLUXWARDEN_CONFIG naming no file fails loudly instead of running on defaults."""
    monkeypatch.setenv("FLUXWARDEN_CONFIG", str(tmp_path / "absent.yaml"))
    with pytest.raises(FileNotFoundError, match="no such config file"):
        Settings()


def test_key_digest_must_be_sha256_hex() -> None:
    """A key stored in clear (not a 64-hex digest) is refused."""
    with pytest.raises(ValidationError, match="SHA-256"):
        Settings(tenants={"acme": {"keys": [{"id": "k1", "sha256": "my-secret-key"}]}})


def test_one_key_cannot_serve_two_tenants() -> None:
    """The same key digest under two tenants is refused (which policy would apply?)."""
    digest = hash_key("shared")
    with pytest.raises(ValidationError, match="also a key of"):
        Settings(
            tenants={"a": {"keys": [{"id": "k", "sha256": digest}]}, "b": {"keys": [{"id": "k", "sha256": digest}]}}
        )


def test_default_size_must_parse() -> None:
    """A default_size that is not WIDTHxHEIGHT is refused at start-up."""
    with pytest.raises(ValidationError, match="WIDTHxHEIGHT"):
        Settings(default_size="large")
