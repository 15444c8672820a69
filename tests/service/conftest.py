"""Sidecar fixtures: real uvicorn servers on free loopback ports, and in-process test clients.

Servers are module- or session-scoped so that models and the tiny FLUX pipeline load once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from classifiers import registry
from moderation.types import ClassifierResult, Stage
from service.app import create_app
from service.settings import Settings
from tests.conftest import RULES_ONLY_POLICY

# The rule-based prompt stage plus a programmable image stage (see ImageScoresStandIn).
SERVICE_TEST_POLICY = """
id: service-test
version: "t1"
prompt:
  classifiers: [{name: lexicon}, {name: names}, {name: minors}]
  categories:
    sexual: {flag: 0.3, block: 0.5}
    sexual/minors: {block: 0.3}
    violence/graphic: {flag: 0.3, block: 0.5}
    hate: {flag: 0.3, block: 0.5}
image:
  classifiers: [{name: service_image_standin}]
  categories:
    sexual: {flag: 0.2, blur: 0.5, block: 0.9}
  blur: {mode: full, method: pixelate}
  blocked_output: black
"""

# Same as the rules-only policy but sexual content is only flagged (a tenant with other rules).
LENIENT_POLICY = RULES_ONLY_POLICY.replace("id: rules-only", "id: lenient").replace(
    "sexual: {flag: 0.3, block: 0.5}", "sexual: {flag: 0.3}"
)

# Rule-based prompt checks with the real image detectors.
RULES_IMAGES_POLICY = RULES_ONLY_POLICY.replace("id: rules-only", "id: rules-images").replace(
    "classifiers: []", "classifiers: [{name: nudenet}, {name: open_nsfw}]"
)

UNSAFE_PROMPT = "a naked woman, explicit porn"
SAFE_PROMPT = "a lighthouse at dawn"


class ImageScoresStandIn:
    """Test stand-in for the image classifiers: no explicit images may be stored or made here.

    Scores the i-th image of each batch with `scores[i]` for `sexual` (0 past the end), so a test
    can make generated images pass, blur or block one by one.
    """

    name, version, stage = "service_image_standin", "test", Stage.IMAGE

    def __init__(self) -> None:
        self.scores: list[float] = []

    def classify(self, images: Sequence[Any]) -> list[ClassifierResult]:
        return [
            ClassifierResult(
                classifier=self.name,
                version=self.version,
                scores={"sexual": self.scores[i] if i < len(self.scores) else 0.0},
            )
            for i in range(len(images))
        ]

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None = None, **_context: Any) -> ImageScoresStandIn:
        return cls()


registry.register(ImageScoresStandIn.name, Stage.IMAGE, ImageScoresStandIn.from_options)


def landscape_png(size: int = 256) -> bytes:
    """A drawn landscape (sky, sun, hills): a benign image that needs no dataset on disk."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), (120, 170, 230))
    draw = ImageDraw.Draw(image)
    draw.ellipse((size * 0.65, size * 0.1, size * 0.85, size * 0.3), fill=(250, 220, 80))
    draw.polygon(
        [(0, size), (0, size * 0.6), (size * 0.4, size * 0.45), (size, size * 0.7), (size, size)], fill=(60, 140, 60)
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class LiveServer:
    """A real uvicorn server in a background thread, bound to a free loopback port."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start (see the log above)")
            time.sleep(0.05)
        return self

    @property
    def port(self) -> int:
        return self.server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def write_policy(directory: Path, name: str, text: str) -> str:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture(scope="session")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("service-policies")
    write_policy(directory, "rules.yaml", RULES_ONLY_POLICY)
    write_policy(directory, "lenient.yaml", LENIENT_POLICY)
    write_policy(directory, "service-test.yaml", SERVICE_TEST_POLICY)
    write_policy(directory, "rules-images.yaml", RULES_IMAGES_POLICY)
    return directory


@pytest.fixture(scope="session")
def image_standin() -> ImageScoresStandIn:
    return ImageScoresStandIn()


@pytest.fixture(scope="session")
def gen_server(policy_dir: Path, image_standin: ImageScoresStandIn) -> Iterator[LiveServer]:
    """Rules-only prompt checks, the tiny random FLUX pipeline, a programmable image stage.

    No queue behind the running generation (a second concurrent request gets 429), small images.
    """
    settings = Settings(
        policy=str(policy_dir / "service-test.yaml"),
        model="tiny",
        generation_queue=0,
        max_n=3,
        max_image_pixels=128 * 128,
        default_size="64x64",
        max_steps=50,
        max_body_bytes=2_000_000,
        max_prompt_chars=500,
    )
    app = create_app(settings, classifiers={ImageScoresStandIn.name: image_standin})
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def standin_scores(image_standin: ImageScoresStandIn) -> Iterator[ImageScoresStandIn]:
    """The image stand-in, reset to 'every image clean' after the test."""
    yield image_standin
    image_standin.scores = []


@pytest.fixture(scope="session")
def rules_client(policy_dir: Path) -> Iterator[Any]:
    """In-process client: rule-based prompt checks, real image models, no generator."""
    from fastapi.testclient import TestClient

    settings = Settings(policy=str(policy_dir / "rules-images.yaml"), model="none", max_body_bytes=2_000_000)
    with TestClient(create_app(settings)) as client:
        yield client
