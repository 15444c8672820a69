"""The official OpenAI SDK against a real uvicorn sidecar on the default policy (real models)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import openai
import pytest
from PIL import Image

from moderation.taxonomy import OPENAI_CATEGORIES
from service.app import create_app
from service.settings import Settings
from tests.service.conftest import SAFE_PROMPT, UNSAFE_PROMPT, LiveServer, landscape_png

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    settings = Settings(policy="default", model="tiny", default_size="64x64", max_n=2)
    with LiveServer(create_app(settings)) as live:
        yield live


@pytest.fixture(scope="module")
def client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused-on-loopback", max_retries=0, timeout=60)


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def test_text_moderation_parses_into_sdk_types(client: openai.OpenAI) -> None:
    """A safe prompt comes back unflagged, with all 13 OpenAI categories in the SDK's types."""
    response = client.moderations.create(input=SAFE_PROMPT)
    [result] = response.results
    assert not result.flagged
    assert set(result.category_scores.model_dump(by_alias=True)) == {c.value for c in OPENAI_CATEGORIES}
    assert result.category_applied_input_types.sexual == ["text"]


def test_unsafe_text_is_flagged_with_its_category(client: openai.OpenAI) -> None:
    """An explicit prompt is flagged under `sexual`, and fluxwarden's verdict rides in an extra field."""
    [result] = client.moderations.create(input=UNSAFE_PROMPT).results
    assert result.flagged and result.categories.sexual
    assert result.model_extra["fluxwarden"]["action"] == "block"


def test_list_of_strings_gives_one_result_each(client: openai.OpenAI) -> None:
    """Each string of a list input gets its own result, in order."""
    response = client.moderations.create(input=[SAFE_PROMPT, UNSAFE_PROMPT])
    assert [r.flagged for r in response.results] == [False, True]


def test_image_input_is_checked_by_the_image_stage(client: openai.OpenAI) -> None:
    """A benign image as an image_url part is checked by the image models and not flagged."""
    response = client.moderations.create(
        model="omni-moderation-latest",
        input=[{"type": "image_url", "image_url": {"url": _data_url(landscape_png())}}],
    )
    [result] = response.results
    assert not result.flagged
    assert result.category_applied_input_types.sexual == ["image"]
    assert result.category_applied_input_types.hate == []


def test_images_generate_returns_decodable_images(client: openai.OpenAI) -> None:
    """images.generate returns base64 PNGs of the asked size, and says the model is the tiny random one."""
    response = client.images.generate(
        prompt=SAFE_PROMPT,
        n=2,
        size="64x64",
        response_format="b64_json",
        extra_body={"seed": 7, "num_inference_steps": 2},
    )
    assert len(response.data) == 2
    image = Image.open(io.BytesIO(base64.b64decode(response.data[0].b64_json)))
    assert image.size == (64, 64)
    assert response.model_extra["fluxwarden"]["tiny_random"] is True


def test_a_prompt_in_another_language_is_refused_with_the_reason_in_the_message(client: openai.OpenAI) -> None:
    """The default policy refuses prompts its English classifiers cannot read; no category explains
    that, so the message names the language read and the languages covered."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(prompt="un chat qui dort sur un canapé au soleil", size="64x64")
    assert caught.value.code == "content_policy_violation"
    assert "reads as 'fr'" in caught.value.message and "cover en only" in caught.value.message
    assert caught.value.body["moderation_details"] == {"stage": "input", "categories": []}
    (decision,) = caught.value.body["fluxwarden"]["decisions"]
    assert [r["code"] for r in decision["reasons"]] == ["other_language"]


def test_unsafe_prompt_raises_content_policy_violation(client: openai.OpenAI) -> None:
    """A refused prompt raises the SDK's BadRequestError with code content_policy_violation, stage input."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(prompt=UNSAFE_PROMPT, size="64x64")
    assert caught.value.code == "content_policy_violation"
    details = caught.value.body["moderation_details"]
    assert details["stage"] == "input" and "sexual" in details["categories"]
