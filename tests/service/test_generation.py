"""/v1/images/generations on a real server with the tiny FLUX pipeline: per-image outcomes and limits."""

from __future__ import annotations

import base64
import re
import threading
import time

import httpx
import openai
import pytest

from tests.service.conftest import SAFE_PROMPT, ImageScoresStandIn, LiveServer

pytestmark = pytest.mark.slow


def _generate(server: LiveServer, timeout: float = 120, **body: object) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/images/generations", json={"prompt": SAFE_PROMPT, **body}, timeout=timeout)


def test_blocked_images_are_dropped_and_blurred_ones_returned(
    gen_server: LiveServer, standin_scores: ImageScoresStandIn
) -> None:
    """Of three images (clean, blur-level, block-level) two are returned; every image has a decision."""
    standin_scores.scores = [0.0, 0.6, 0.95]
    response = _generate(gen_server, n=3, seed=1)
    assert response.status_code == 200, response.text
    body = response.json()
    reports = body["fluxwarden"]["images"]
    assert len(body["data"]) == 2
    assert [(r["action"], r["delivered"], r["blurred"]) for r in reports] == [
        ("allow", True, False),
        ("blur", True, True),
        ("block", False, False),
    ]


def test_blurred_image_differs_from_the_original(gen_server: LiveServer, standin_scores: ImageScoresStandIn) -> None:
    """The same seed returns a different (blurred) image when the image stage says blur."""
    clean = _generate(gen_server, seed=3).json()["data"][0]["b64_json"]
    standin_scores.scores = [0.6]
    blurred = _generate(gen_server, seed=3).json()["data"][0]["b64_json"]
    assert clean != blurred


def test_same_seed_gives_the_same_image(gen_server: LiveServer) -> None:
    """`seed` (an extra body field) makes generation reproducible."""
    first = _generate(gen_server, seed=11, num_inference_steps=2).json()["data"][0]["b64_json"]
    second = _generate(gen_server, seed=11, num_inference_steps=2).json()["data"][0]["b64_json"]
    assert first == second


def test_all_images_blocked_is_a_content_policy_violation_at_output(
    gen_server: LiveServer, standin_scores: ImageScoresStandIn
) -> None:
    """When every image is blocked the SDK raises BadRequestError with stage output."""
    standin_scores.scores = [0.95]
    client = openai.OpenAI(base_url=f"{gen_server.url}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(prompt=SAFE_PROMPT, size="64x64")
    assert caught.value.code == "content_policy_violation"
    assert caught.value.body["moderation_details"] == {"stage": "output", "categories": ["sexual"]}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"size": "100x100"}, "size"),
        ({"size": "256x256"}, "size"),
        ({"size": "big"}, "size"),
        ({"n": 4}, "n"),
        ({"n": 0}, "n"),
        ({"response_format": "url"}, "response_format"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
    ],
)
def test_out_of_limit_parameters_are_refused(gen_server: LiveServer, body: dict, param: str) -> None:
    """Sizes off the 16-pixel grid or over the pixel cap, n over max_n, url output: 400 naming the parameter."""
    response = _generate(gen_server, **body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_over_long_prompt_is_refused(gen_server: LiveServer) -> None:
    """A prompt over the server's character cap gets 400 saying how long it may be."""
    response = httpx.post(f"{gen_server.url}/v1/moderations", json={"input": "a cat " * 100})
    assert response.status_code == 400
    assert "at most 500" in response.json()["error"]["message"]


def test_oversized_body_is_refused_with_413(gen_server: LiveServer) -> None:
    """A body over max_body_bytes gets 413 before it is parsed."""
    response = httpx.post(f"{gen_server.url}/v1/moderations", content=b"x" * 2_100_000, timeout=30)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_oversized_streamed_body_is_refused_with_413(gen_server: LiveServer) -> None:
    """A chunked body with no Content-Length is counted as it arrives and refused with 413 past the limit."""

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(30):
            yield b"x" * 100_000

    response = httpx.post(f"{gen_server.url}/v1/moderations", content=chunks(), timeout=30)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def _metric(server: LiveServer, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_full_queue_answers_429_with_retry_after(gen_server: LiveServer) -> None:
    """While one generation runs and the queue (size 0 here) is full, another request gets 429 + Retry-After."""
    first: dict[str, httpx.Response] = {}
    worker = threading.Thread(
        target=lambda: first.setdefault("r", _generate(gen_server, num_inference_steps=30, size="128x128", seed=5))
    )
    worker.start()
    deadline = time.monotonic() + 60
    while _metric(gen_server, "fluxwarden_generation_running") < 1:
        assert time.monotonic() < deadline, "the first generation never started"
        time.sleep(0.02)
    second = _generate(gen_server)
    worker.join(timeout=120)
    assert second.status_code == 429
    assert int(second.headers["Retry-After"]) >= 1
    assert first["r"].status_code == 200


def test_generation_metrics_are_exported(gen_server: LiveServer) -> None:
    """/metrics reports image decisions and a generation latency histogram."""
    _generate(gen_server, seed=2)
    text = httpx.get(f"{gen_server.url}/metrics").text
    assert 'fluxwarden_decisions_total{action="allow",category="none",stage="image"}' in text
    assert 'fluxwarden_stage_latency_seconds_count{stage="generation"}' in text


def test_returned_images_are_png_without_metadata(gen_server: LiveServer) -> None:
    """b64_json holds a PNG (the default output_format)."""
    data = base64.b64decode(_generate(gen_server, seed=4).json()["data"][0]["b64_json"])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_image_with_a_minors_prompt_applies_the_minors_rule(
    gen_server: LiveServer, standin_scores: ImageScoresStandIn
) -> None:
    """Mild nudity only flags an image alone, but blocks it when its prompt mentions a child."""
    from tests.service.conftest import landscape_png

    standin_scores.scores = [0.25]
    files = {"image": ("x.png", landscape_png(64), "image/png")}
    alone = httpx.post(f"{gen_server.url}/v1/check/image", files=files).json()
    with_prompt = httpx.post(
        f"{gen_server.url}/v1/check/image", files=files, data={"prompt": "a young child playing on the beach"}
    ).json()
    assert (alone["action"], with_prompt["action"]) == ("flag", "block")
    assert any(r["code"] == "minors_rule" for r in with_prompt["reasons"])
