"""Micro-batching of prompt checks: concurrent requests share one classifier call.

The embedding model costs about the same for 1 prompt as for 8, so under load the sidecar waits
up to `window_s` (or until `max_items` prompts are waiting) and sends everything in one
`check_prompts` call on a worker thread; when no batch is running at all, a prompt goes at once
(a lone caller should not pay the window). At most `max_in_flight` batches run at once: on two
cores more would only fight over them, so further prompts keep collecting until one finishes,
which makes batches grow exactly when the load does. The event loop never runs a classifier.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import structlog

from moderation.types import Decision

log = structlog.get_logger("fluxwarden.service.batching")

CheckFn = Callable[[Sequence[str], Mapping[str, Any] | None], list[Decision]]


@dataclass
class _Item:
    texts: list[str]
    future: asyncio.Future[list[Decision]]


@dataclass
class _Pending:
    context: Mapping[str, Any] | None
    items: list[_Item] = field(default_factory=list)
    count: int = 0
    timer: asyncio.TimerHandle | None = None
    due: bool = False  # its window has passed; it waits only for a free batch slot


class PromptBatcher:
    """Collects prompts per context (tenant, key) and checks each collection in one call.

    `check(texts, context)` must be thread-safe (a `Moderator.check_prompts` is) and must accept
    only prompts already validated: one invalid prompt would otherwise fail its whole batch.
    """

    def __init__(
        self,
        check: CheckFn,
        executor: Executor,
        *,
        window_s: float = 0.002,
        max_items: int = 32,
        max_in_flight: int = 2,
        eager: bool = True,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._check = check
        self._executor = executor
        self._window_s = window_s
        self._max_items = max_items
        self._max_in_flight = max_in_flight
        self._eager = eager
        self._on_batch = on_batch
        self._pending: dict[Hashable, _Pending] = {}
        self._in_flight = 0

    async def check(self, texts: Sequence[str], context: Mapping[str, Any] | None = None) -> list[Decision]:
        """Decisions for `texts`, in order, from whichever batch they end up in."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Decision]] = loop.create_future()
        key = tuple(sorted((context or {}).items()))
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = _Pending(context=context)
        pending.items.append(_Item(list(texts), future))
        pending.count += len(texts)
        if pending.count >= self._max_items or self._window_s <= 0 or (self._eager and self._in_flight == 0):
            self._flush(key)  # full, or nothing running: waiting would only add latency
        elif pending.timer is None and not pending.due:
            pending.timer = loop.call_later(self._window_s, self._flush, key)
        return await future

    def _flush(self, key: Hashable) -> None:
        pending = self._pending.get(key)
        if pending is None:
            return
        if pending.timer is not None:
            pending.timer.cancel()
            pending.timer = None
        if self._in_flight >= self._max_in_flight:
            pending.due = True  # sent as soon as a running batch finishes
            return
        del self._pending[key]
        texts = [t for item in pending.items for t in item.texts]
        if self._on_batch is not None:
            self._on_batch(len(texts))
        self._in_flight += 1
        loop = asyncio.get_running_loop()
        done = loop.run_in_executor(self._executor, self._check, texts, pending.context)
        done.add_done_callback(lambda fut: self._finished(fut, pending.items))

    def _finished(self, fut: asyncio.Future[list[Decision]], items: list[_Item]) -> None:
        self._in_flight -= 1
        _distribute(fut, items)
        due = next((key for key, p in self._pending.items() if p.due), None)
        if due is not None:
            self._flush(due)


def _distribute(fut: asyncio.Future[list[Decision]], items: list[_Item]) -> None:
    """Hand each request its slice of the batch's decisions (or the batch's error)."""
    error = fut.exception() if not fut.cancelled() else asyncio.CancelledError()
    offset = 0
    for item in items:
        if item.future.done():  # the caller timed out and went away
            offset += len(item.texts)
            continue
        if error is not None:
            item.future.set_exception(error)
            continue
        decisions = fut.result()
        item.future.set_result(decisions[offset : offset + len(item.texts)])
        offset += len(item.texts)
    if error is not None and not isinstance(error, asyncio.CancelledError):
        log.error("prompt_batch_failed", error=f"{type(error).__name__}: {error}", requests=len(items))
