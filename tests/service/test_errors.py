"""Malformed requests get 400 with a message that says what is wrong, never a 500 or a 422."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}


def _error(response) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == 400, response.text
    return response.json()["error"]


def test_malformed_json_is_400_naming_the_problem(rules_client: TestClient) -> None:
    """A body that is not JSON gets code invalid_json and a 'malformed JSON body' message."""
    error = _error(rules_client.post("/v1/moderations", content=b'{"input": "a cat",', headers=JSON))
    assert error["code"] == "invalid_json"
    assert error["message"].startswith("malformed JSON body")


def test_json_that_is_not_an_object_is_400(rules_client: TestClient) -> None:
    """A JSON array where an object is expected says the body must be a JSON object."""
    error = _error(rules_client.post("/v1/moderations", content=b'["a cat"]', headers=JSON))
    assert "JSON object" in error["message"]


def test_missing_field_is_named(rules_client: TestClient) -> None:
    """A request without `input` names the missing field."""
    error = _error(rules_client.post("/v1/moderations", json={"model": "x"}))
    assert error["message"] == "missing required field 'input'"


def test_unknown_argument_is_named(rules_client: TestClient) -> None:
    """An unrecognized request argument is refused by name, as OpenAI does."""
    error = _error(rules_client.post("/v1/moderations", json={"input": "a cat", "temperature": 1}))
    assert "temperature" in error["message"]


def test_empty_input_list_is_400(rules_client: TestClient) -> None:
    """An empty input list is refused rather than answered with no results."""
    _error(rules_client.post("/v1/moderations", json={"input": []}))


def test_control_characters_are_400(rules_client: TestClient) -> None:
    """A prompt with a control character is refused, naming the character."""
    error = _error(rules_client.post("/v1/check/prompt", json={"prompt": "a cat\x00"}))
    assert "U+0000" in error["message"]


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("data:image/png;base64,@@not-base64@@", "invalid_base64"),
        ("data:image/png,rawbytes", "invalid_image_url"),
        ("data:text/plain;base64,aGVsbG8=", "invalid_image_url"),
        ("https://example.com/cat.png", "invalid_image_url"),
    ],
)
def test_bad_image_urls_are_400(rules_client: TestClient, url: str, code: str) -> None:
    """Bad base64, non-base64 or non-image data URLs and remote URLs are refused with a specific code."""
    body = {"input": [{"type": "image_url", "image_url": {"url": url}}]}
    error = _error(rules_client.post("/v1/moderations", json=body))
    assert error["code"] == code
    assert error["param"] == "input[0].image_url.url"


def test_base64_of_a_non_image_is_400(rules_client: TestClient) -> None:
    """Valid base64 that decodes to something other than an image is refused as not an image."""
    payload = base64.b64encode(b"%PDF-1.7 definitely not a picture").decode()
    error = _error(rules_client.post("/v1/check/image", json={"image": payload}))
    assert error["code"] == "invalid_input"


def test_multipart_without_image_field_is_400(rules_client: TestClient) -> None:
    """A multipart upload without an `image` file field says which field is needed."""
    error = _error(rules_client.post("/v1/check/image", files={"picture": ("x.png", b"123", "image/png")}))
    assert "'image'" in error["message"]


def test_unsupported_content_type_is_415(rules_client: TestClient) -> None:
    """/v1/check/image with a text/plain body gets 415 naming the accepted types."""
    response = rules_client.post("/v1/check/image", content=b"hello", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["error"]["message"]


def test_unknown_path_is_404_in_openai_shape(rules_client: TestClient) -> None:
    """Unknown paths answer 404 with an OpenAI-shaped error body."""
    response = rules_client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_generation_disabled_is_503(rules_client: TestClient) -> None:
    """With --model none the images endpoint says generation is disabled."""
    response = rules_client.post("/v1/images/generations", json={"prompt": "a cat"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "generation_disabled"


def test_invalid_item_of_a_list_is_named_by_index(rules_client: TestClient) -> None:
    """An empty string inside a list input is refused naming its position."""
    error = _error(rules_client.post("/v1/moderations", json={"input": ["a cat", "  "]}))
    assert error["param"] == "input[1]"
    assert "empty" in error["message"]
