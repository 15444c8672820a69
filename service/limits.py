"""Limits and backpressure: body size, image sizes, and one generation at a time per device.

A request the server cannot take is refused early and cheaply (413, 400, 429 with Retry-After)
instead of queueing without bound: a sidecar that falls over under load fails open for everyone.
"""

from __future__ import annotations

import asyncio
import json
import math

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import APIError
from service.metrics import Metrics
from service.settings import parse_size

SIZE_MULTIPLE = 16


def check_size(value: str | None, *, default: str, max_pixels: int) -> tuple[int, int]:
    """Validated (width, height) for an images request; raises a 400 naming the rule broken."""
    text = default if value in (None, "", "auto") else value
    try:
        width, height = parse_size(text)
    except ValueError as exc:
        raise APIError(400, str(exc), param="size", code="invalid_size") from None
    if width < SIZE_MULTIPLE or height < SIZE_MULTIPLE or width % SIZE_MULTIPLE or height % SIZE_MULTIPLE:
        raise APIError(
            400,
            f"size {width}x{height}: width and height must be positive multiples of {SIZE_MULTIPLE}",
            param="size",
            code="invalid_size",
        )
    if width * height > max_pixels:
        raise APIError(
            400,
            f"size {width}x{height} is {width * height} pixels; this server allows at most {max_pixels}",
            param="size",
            code="invalid_size",
        )
    return width, height


class BodyTooLargeError(HTTPException):
    """Raised while a body without Content-Length streams past the limit.

    A FastAPI HTTPException, so that FastAPI's body parsing passes it on (anything else it turns
    into "400 error parsing the body") and the app's handler answers 413.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body is larger than this server accepts ({max_bytes} bytes at most)")


class BodySizeLimitMiddleware:
    """413 for bodies over `max_bytes`, by Content-Length up front or by counting a streamed body."""

    def __init__(self, app: ASGIApp, max_bytes: int, metrics: Metrics | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await self._refuse(send, 400, "Content-Length is not a number")
                    return
                if declared > self.max_bytes:
                    await self._refuse(send, 413, self._message(declared))
                    return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if self.metrics is not None:
                        self.metrics.rejected.labels("body_too_large").inc()
                    raise BodyTooLargeError(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError as exc:  # raised outside FastAPI's handlers (e.g. by another middleware)
            if not started:
                await self._refuse(send, 413, str(exc.detail))

    def _message(self, size: int) -> str:
        return f"request body is {size} bytes; this server accepts at most {self.max_bytes}"

    async def _refuse(self, send: Send, status: int, message: str) -> None:
        if self.metrics is not None:
            self.metrics.rejected.labels("body_too_large" if status == 413 else "bad_length").inc()
        body = json.dumps(APIError(status, message, code="request_too_large" if status == 413 else None).body())
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})


class QueueFullError(APIError):
    def __init__(self, retry_after: int, waiting: int) -> None:
        super().__init__(
            429,
            f"the generator is busy ({waiting} request(s) waiting); retry after {retry_after}s",
            code="queue_full",
            headers={"Retry-After": str(retry_after)},
        )


class GenerationQueue:
    """One generation at a time on the device, at most `max_waiting` behind it.

    The slot is held until the generator thread actually finishes, even when the request has
    timed out: a second generation never starts while the first still occupies the device.
    """

    def __init__(self, max_waiting: int, metrics: Metrics | None = None) -> None:
        self.max_waiting = max_waiting
        self._lock = asyncio.Lock()
        self._waiting = 0
        self._running = False
        self._metrics = metrics
        self._avg_s = 1.0  # EWMA of generation time, for Retry-After

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def running(self) -> bool:
        return self._running

    def retry_after(self) -> int:
        return max(1, math.ceil(self._avg_s * (self._waiting + 1)))

    async def acquire(self) -> None:
        """Wait for the device; 429 at once if the queue is full. Pair with `release` when the work ends."""
        if (self._running or self._lock.locked()) and self._waiting >= self.max_waiting:
            if self._metrics is not None:
                self._metrics.rejected.labels("queue_full").inc()
            raise QueueFullError(self.retry_after(), self._waiting)
        self._waiting += 1
        self._gauge()
        try:
            await self._lock.acquire()
        finally:
            self._waiting -= 1
            self._gauge()
        self._running = True
        self._gauge()

    def release(self, seconds: float | None) -> None:
        """Called when the generator thread returns; frees the device for the next request."""
        if seconds is not None:
            self._avg_s = 0.7 * self._avg_s + 0.3 * seconds
        self._running = False
        self._gauge()
        self._lock.release()

    def _gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.queue_depth.set(self._waiting)
            self._metrics.generation_running.set(1 if self._running else 0)
