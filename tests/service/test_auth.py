"""API keys -> tenant -> policy, and the refusal to listen openly without keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.app import create_app
from service.auth import hash_key
from service.cli import app as service_cli
from service.settings import Settings, UnsafeBindError, check_bind
from tests.service.conftest import UNSAFE_PROMPT

STRICT_KEY = "fw-test-strict-key"
LENIENT_KEY = "fw-test-lenient-key"


@pytest.fixture(scope="module")
def client(policy_dir: Path) -> Iterator[TestClient]:
    settings = Settings(
        policy=str(policy_dir / "rules.yaml"),
        model="none",
        tenants={
            "strict-team": {"keys": [{"id": "strict-1", "sha256": hash_key(STRICT_KEY)}]},
            "lenient-team": {
                "policy": str(policy_dir / "lenient.yaml"),
                "keys": [{"id": "lenient-1", "sha256": hash_key(LENIENT_KEY)}],
            },
        },
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_missing_key_is_401(client: TestClient) -> None:
    """Without an Authorization header a keyed server answers 401 invalid_api_key."""
    response = client.post("/v1/moderations", json={"input": "a cat"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_wrong_key_is_401(client: TestClient) -> None:
    """An unknown key is refused with 401 and a WWW-Authenticate challenge."""
    response = client.post("/v1/moderations", json={"input": "a cat"}, headers=_auth("fw-not-a-key"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_non_bearer_scheme_is_401(client: TestClient) -> None:
    """Basic auth (or any scheme but Bearer) is refused with a message naming the expected form."""
    response = client.get("/v1/policy", headers={"Authorization": f"Basic {STRICT_KEY}"})
    assert response.status_code == 401
    assert "Bearer" in response.json()["error"]["message"]


def test_key_selects_its_tenants_policy(client: TestClient) -> None:
    """/v1/policy names the policy of the key's tenant."""
    strict = client.get("/v1/policy", headers=_auth(STRICT_KEY)).json()
    lenient = client.get("/v1/policy", headers=_auth(LENIENT_KEY)).json()
    assert (strict["id"], strict["tenant"]) == ("rules-only", "strict-team")
    assert (lenient["id"], lenient["tenant"]) == ("lenient", "lenient-team")


def test_tenant_policy_decides_the_request(client: TestClient) -> None:
    """The same prompt is blocked under one tenant's policy and only flagged under the other's."""
    strict = client.post("/v1/check/prompt", json={"prompt": UNSAFE_PROMPT}, headers=_auth(STRICT_KEY)).json()
    lenient = client.post("/v1/check/prompt", json={"prompt": UNSAFE_PROMPT}, headers=_auth(LENIENT_KEY)).json()
    assert (strict["action"], lenient["action"]) == ("block", "flag")


def test_health_needs_no_key(client: TestClient) -> None:
    """Probes (/healthz, /readyz) answer without a key."""
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_open_non_loopback_bind_is_refused() -> None:
    """Settings that would listen on 0.0.0.0 with no keys are refused."""
    with pytest.raises(UnsafeBindError, match="without API keys"):
        check_bind(Settings(host="0.0.0.0"))


def test_open_loopback_bind_warns() -> None:
    """Loopback without keys is allowed, with a warning that every request is accepted."""
    assert any("no API keys" in w for w in check_bind(Settings(host="127.0.0.1")))


def test_serve_refuses_open_public_bind(monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve --host 0.0.0.0` without keys exits 2 before starting anything."""
    monkeypatch.delenv("FLUXWARDEN_CONFIG", raising=False)
    result = CliRunner().invoke(service_cli, ["serve", "--host", "0.0.0.0", "--model", "none"])
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0" in result.output


def test_serve_key_prints_a_key_and_its_digest() -> None:
    """`serve-key` prints a config entry whose digest is the SHA-256 of the printed key."""
    result = CliRunner().invoke(service_cli, ["serve-key", "acme", "--id", "prod"])
    assert result.exit_code == 0
    key = next(line.split(": ", 1)[1] for line in result.output.splitlines() if line.startswith("key (shown once)"))
    assert hash_key(key) in result.output


def test_serve_refuses_a_broken_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve --policy broken.yaml` prints file:line problems and exits 2 before starting anything."""
    monkeypatch.delenv("FLUXWARDEN_CONFIG", raising=False)
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: broken\nprompt:\n  categories:\n    sexual: {flag: 2}\n")
    result = CliRunner().invoke(service_cli, ["serve", "--policy", str(broken), "--model", "none"])
    assert result.exit_code == 2
    assert "broken.yaml:" in result.output
