"""The sidecar's app factory: `create_app(settings)` builds a testable app; the lifespan loads models once."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service import routes_native, routes_openai
from service.errors import APIError, api_error_handler, http_error_handler, validation_error_handler
from service.limits import BodySizeLimitMiddleware
from service.metrics import MetricsMiddleware
from service.runtime import ServiceState
from service.settings import Settings, check_bind

log = structlog.get_logger("fluxwarden.service")

VERSION = "0.1.0"


def create_app(settings: Settings | None = None, *, classifiers: Mapping[str, Any] | None = None) -> FastAPI:
    """A ready-to-serve app; models load when the server starts (lifespan), not here.

    `classifiers` maps policy classifier names to ready instances (operator plugins, test stand-ins).
    """
    settings = settings or Settings()
    for warning in check_bind(settings):
        log.warning("auth_disabled", message=warning)
    state = ServiceState(settings, classifiers=classifiers)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(state.load)
        # Models are hundreds of thousands of long-lived objects: move them out of the collector's
        # view so that full collections (pauses in the request path) only scan per-request garbage.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            state.close()

    app = FastAPI(
        title="fluxwarden sidecar",
        version=VERSION,
        description=(
            "Moderation for FLUX text-to-image generation. `/v1/moderations` and `/v1/images/generations` "
            "speak OpenAI's API (point an OpenAI SDK's base_url here); `/v1/check/*` return full decisions."
        ),
        lifespan=lifespan,
    )
    app.state.fluxwarden = state
    app.include_router(routes_openai.router)
    app.include_router(routes_native.router)
    app.add_exception_handler(APIError, api_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    # Outermost first: count every request, including those refused for size.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes, metrics=state.metrics)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    return app


def create_app_from_env() -> FastAPI:
    """uvicorn factory for `fluxwarden serve`: every worker reads FLUXWARDEN_* (set by the CLI)."""
    return create_app(Settings())
