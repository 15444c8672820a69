"""Per-request time limits: a check that runs too long answers 504, it never hangs the caller."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from classifiers import registry
from moderation.types import ClassifierResult, Stage
from service.app import create_app
from service.settings import Settings
from tests.service.conftest import write_policy


class SlowPromptStandIn:
    """Test stand-in for a prompt model that has stalled: sleeps longer than the request limit."""

    name, version, stage = "slow_prompt_standin", "test", Stage.PROMPT

    def classify(self, texts: Sequence[Any]) -> list[ClassifierResult]:
        time.sleep(1.0)
        return [ClassifierResult(classifier=self.name, version=self.version) for _ in texts]

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None = None, **_context: Any) -> SlowPromptStandIn:
        return cls()


registry.register(SlowPromptStandIn.name, Stage.PROMPT, SlowPromptStandIn.from_options)

SLOW_POLICY = """
id: slow
prompt:
  classifiers: [{name: slow_prompt_standin}]
  categories:
    sexual/minors: {block: 0.3}
"""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    policy = write_policy(Path(tmp_path_factory.mktemp("slow")), "slow.yaml", SLOW_POLICY)
    settings = Settings(policy=policy, model="none", request_timeout_s=0.2)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_slow_check_answers_504(client: TestClient) -> None:
    """A prompt check over request_timeout_s gets 504 code timeout, well before the check ends."""
    start = time.monotonic()
    response = client.post("/v1/moderations", json={"input": "a cat"})
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "timeout"
    assert time.monotonic() - start < 0.9
