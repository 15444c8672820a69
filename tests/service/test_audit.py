"""With an audit directory, every decision the sidecar makes is recorded with the caller's tenant."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import hash_key
from service.settings import Settings
from tests.service.conftest import UNSAFE_PROMPT

KEY = "fw-audit-test-key"


@pytest.fixture(scope="module")
def audit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audit")


@pytest.fixture(scope="module")
def client(policy_dir: Path, audit_dir: Path) -> Iterator[TestClient]:
    settings = Settings(
        policy=str(policy_dir / "rules.yaml"),
        model="none",
        audit_dir=audit_dir,
        tenants={"acme": {"keys": [{"id": "acme-1", "sha256": hash_key(KEY)}]}},
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _events(directory: Path) -> list[dict]:
    lines = [line for path in sorted(directory.glob("segment-*.jsonl")) for line in path.read_text().splitlines()]
    return [json.loads(line) for line in lines if line.strip()]


def test_moderation_decisions_are_audited_with_tenant(client: TestClient, audit_dir: Path) -> None:
    """Each checked input leaves a decision event carrying its decision id, tenant and key id."""
    body = client.post("/v1/moderations", json={"input": UNSAFE_PROMPT}, headers={"Authorization": f"Bearer {KEY}"})
    [decision_id] = body.json()["results"][0]["fluxwarden"]["decision_ids"]
    event = next(e for e in _events(audit_dir) if e.get("decision_id") == decision_id)
    assert (event["tenant"], event["key_id"], event["action"]) == ("acme", "acme-1", "block")


def test_audit_keeps_no_raw_prompt_by_default(client: TestClient, audit_dir: Path) -> None:
    """Under store_inputs: hash the prompt text never reaches the audit log."""
    client.post(
        "/v1/check/prompt", json={"prompt": "a secret violet giraffe"}, headers={"Authorization": f"Bearer {KEY}"}
    )
    text = "".join(path.read_text() for path in audit_dir.glob("segment-*.jsonl"))
    assert "violet giraffe" not in text
