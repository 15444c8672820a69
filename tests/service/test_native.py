"""Native endpoints: full decisions for prompts and images, the policy in force, probes, metrics."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from tests.service.conftest import SAFE_PROMPT, UNSAFE_PROMPT, landscape_png

LANDSCAPE = landscape_png()


def test_check_prompt_returns_the_full_decision(rules_client: TestClient) -> None:
    """/v1/check/prompt returns a Decision with action, reasons and the policy's sha256."""
    decision = rules_client.post("/v1/check/prompt", json={"prompt": UNSAFE_PROMPT}).json()
    assert decision["action"] == "block"
    assert decision["reasons"][0]["category"] == "sexual"
    assert decision["policy_sha256"] == rules_client.get("/v1/policy").json()["sha256"]


def test_check_image_accepts_multipart(rules_client: TestClient) -> None:
    """A benign image uploaded as multipart is checked by the image detectors and allowed."""
    files = {"image": ("landscape.png", LANDSCAPE, "image/png")}
    decision = rules_client.post("/v1/check/image", files=files).json()
    assert (decision["stage"], decision["action"]) == ("image", "allow")
    assert any(c.startswith("nudenet") for c in decision["classifiers"])


def test_check_image_accepts_base64_json(rules_client: TestClient) -> None:
    """The same image as base64 in JSON gives the same verdict."""
    payload = base64.b64encode(LANDSCAPE).decode()
    decision = rules_client.post("/v1/check/image", json={"image": payload, "prompt": SAFE_PROMPT}).json()
    assert decision["action"] == "allow"


def test_policy_reports_id_version_and_digest(rules_client: TestClient) -> None:
    """/v1/policy names the policy by id, version and sha256."""
    policy = rules_client.get("/v1/policy").json()
    assert (policy["id"], policy["version"], len(policy["sha256"])) == ("rules-images", "t1", 64)


def test_readyz_reports_models_loaded(rules_client: TestClient) -> None:
    """/readyz is 200 once every classifier has loaded."""
    response = rules_client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_metrics_count_requests_and_decisions(rules_client: TestClient) -> None:
    """/metrics counts requests by endpoint and decisions by stage, action and category."""
    rules_client.post("/v1/moderations", json={"input": UNSAFE_PROMPT})
    text = rules_client.get("/metrics").text
    assert 'fluxwarden_requests_total{endpoint="/v1/moderations",status="200"}' in text
    assert 'fluxwarden_decisions_total{action="block",category="sexual",stage="prompt"}' in text
    assert "fluxwarden_generation_queue_depth 0.0" in text


def test_moderation_extra_field_carries_t2i_categories(rules_client: TestClient) -> None:
    """Categories beyond OpenAI's 13 appear only in the `fluxwarden` extra field."""
    body = rules_client.post("/v1/moderations", json={"input": "a portrait of Taylor Swift"}).json()
    [result] = body["results"]
    assert "public-figure" not in result["categories"]
    assert "public-figure" in result["fluxwarden"]["category_scores"]
