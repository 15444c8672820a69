"""Micro-batching: concurrent prompt checks share one classifier call and get their own decisions back."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from moderation.moderator import Moderator
from moderation.policy import Policy
from moderation.types import Decision
from service.batching import PromptBatcher


class RecordingModerator:
    """A real rules-only Moderator whose batch calls are recorded."""

    def __init__(self, policy: Policy) -> None:
        self.moderator = Moderator(policy)
        self.batches: list[list[str]] = []

    def check(self, texts: Sequence[str], context: Mapping[str, Any] | None) -> list[Decision]:
        self.batches.append(list(texts))
        return self.moderator.check_prompts(list(texts), context=context)


@pytest.fixture
def pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(2)


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_concurrent_requests_share_one_call(rules_policy: Policy, pool: ThreadPoolExecutor) -> None:
    """Ten concurrent single-prompt checks inside the window become one classifier call."""
    recorder = RecordingModerator(rules_policy)
    batcher = PromptBatcher(recorder.check, pool, window_s=0.05, max_items=32, eager=False)

    async def main() -> list[list[Decision]]:
        return await asyncio.gather(*(batcher.check([f"a cat number {i}"]) for i in range(10)))

    _run(main())
    assert [len(b) for b in recorder.batches] == [10]


def test_each_request_gets_its_own_decisions(rules_policy: Policy, pool: ThreadPoolExecutor) -> None:
    """Decisions come back to the request that sent the prompt, in order."""
    recorder = RecordingModerator(rules_policy)
    batcher = PromptBatcher(recorder.check, pool, window_s=0.05, max_items=32, eager=False)
    prompts = [["a cat"], ["a naked woman, explicit porn", "a dog"], ["a boat"]]

    async def main() -> list[list[Decision]]:
        return await asyncio.gather(*(batcher.check(p) for p in prompts))

    results = _run(main())
    assert [[d.action.value for d in r] for r in results] == [["allow"], ["block", "allow"], ["allow"]]


def test_lone_prompt_does_not_wait_for_the_window(rules_policy: Policy, pool: ThreadPoolExecutor) -> None:
    """With nothing running, a prompt is sent at once instead of after the (here 5 s) window."""
    recorder = RecordingModerator(rules_policy)
    batcher = PromptBatcher(recorder.check, pool, window_s=5.0, max_items=32)

    async def main() -> None:
        await asyncio.wait_for(batcher.check(["a cat"]), timeout=2)

    _run(main())
    assert recorder.batches == [["a cat"]]


def test_full_batch_flushes_without_waiting(rules_policy: Policy, pool: ThreadPoolExecutor) -> None:
    """Reaching max_items sends the batch at once; the rest waits for the next one."""
    recorder = RecordingModerator(rules_policy)
    batcher = PromptBatcher(recorder.check, pool, window_s=0.05, max_items=4, eager=False)

    async def main() -> None:
        await asyncio.gather(*(batcher.check([f"a cat {i}"]) for i in range(6)))

    _run(main())
    assert [len(b) for b in recorder.batches] == [4, 2]


def test_prompts_arriving_during_a_busy_batch_batch_up(rules_policy: Policy, pool: ThreadPoolExecutor) -> None:
    """With one batch slot busy, prompts that arrive meanwhile go together in the next call."""
    recorder = RecordingModerator(rules_policy)
    release = threading.Event()

    def slow_first(texts: Sequence[str], context: Mapping[str, Any] | None) -> list[Decision]:
        if not recorder.batches:
            release.wait(5)
        return recorder.check(texts, context)

    batcher = PromptBatcher(slow_first, pool, window_s=0.001, max_items=32, max_in_flight=1)

    async def main() -> None:
        first = asyncio.ensure_future(batcher.check(["a cat"]))
        await asyncio.sleep(0.02)  # the first batch is now running
        rest = [asyncio.ensure_future(batcher.check([f"a dog {i}"])) for i in range(5)]
        await asyncio.sleep(0.02)  # far past the window: they wait only for the slot
        release.set()
        await asyncio.gather(first, *rest)

    _run(main())
    assert [len(b) for b in recorder.batches] == [1, 5]


def test_contexts_are_not_mixed(rules_policy: Policy, pool: ThreadPoolExecutor) -> None:
    """Prompts of different tenants (audit contexts) go in different batches."""
    recorder = RecordingModerator(rules_policy)
    batcher = PromptBatcher(recorder.check, pool, window_s=0.05, max_items=32, eager=False)

    async def main() -> None:
        await asyncio.gather(
            batcher.check(["a cat"], {"tenant": "a"}),
            batcher.check(["a dog"], {"tenant": "b"}),
            batcher.check(["a cow"], {"tenant": "a"}),
        )

    _run(main())
    assert sorted(recorder.batches) == [["a cat", "a cow"], ["a dog"]]


def test_a_failing_batch_fails_every_request(pool: ThreadPoolExecutor) -> None:
    """If the classifier call raises, every request of the batch gets the error (no silent allow)."""

    def broken(texts: Sequence[str], context: Mapping[str, Any] | None) -> list[Decision]:
        raise RuntimeError("classifier crashed")

    batcher = PromptBatcher(broken, pool, window_s=0.01, max_items=32)

    async def main() -> list[Any]:
        return await asyncio.gather(batcher.check(["a"]), batcher.check(["b"]), return_exceptions=True)

    assert all(isinstance(r, RuntimeError) for r in _run(main()))
