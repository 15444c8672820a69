"""fluxwarden's own endpoints: full decisions, the policy in force, health and metrics."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from moderation.types import Decision
from service.codec import decode_image_data
from service.deps import PrincipalDep, StateDep
from service.errors import APIError
from service.routes_openai import check_image_bytes, json_response
from service.schemas import CheckImageJSON, CheckPromptRequest, Health, PolicyResponse

router = APIRouter(tags=["native"])

_CHECK_IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": CheckImageJSON.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "image": {"type": "string", "format": "binary", "description": "PNG, JPEG or WebP file."},
                        "prompt": {"type": "string", "description": "The prompt that produced the image."},
                    },
                    "required": ["image"],
                }
            },
        },
    }
}


@router.post("/v1/check/prompt", response_model=Decision, responses={400: {"description": "Invalid prompt."}})
async def check_prompt(body: CheckPromptRequest, principal: PrincipalDep, state: StateDep) -> Response:
    """The full decision for one prompt: action, categories, scores, reasons, policy."""
    runtime = state.runtime_for(principal)
    text = state.validate_text(body.prompt, runtime, "prompt")
    [decision] = await state.check_prompts(runtime, [text], principal)
    return json_response(decision)


async def _image_request(request: Request) -> tuple[bytes, str | None]:
    """(image bytes, prompt) from a multipart upload or a JSON body with base64."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=4)
        except HTTPException:
            raise  # 413 from the body limit
        except Exception as exc:  # python-multipart raises several types for broken bodies
            raise APIError(400, f"malformed multipart body: {exc}", code="invalid_multipart") from None
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise APIError(400, "multipart body needs a file field named 'image'", param="image")
        prompt = form.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise APIError(400, "'prompt' must be a text field", param="prompt")
        return await upload.read(), prompt
    if content_type in ("application/json", ""):
        raw = await request.body()
        try:
            payload = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise APIError(400, f"malformed JSON body: {exc}", code="invalid_json") from None
        try:
            body = CheckImageJSON.model_validate(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or None
            raise APIError(400, f"{field or 'body'}: {first['msg']}", param=field) from None
        return decode_image_data(body.image, param="image"), body.prompt
    raise APIError(415, f"unsupported content type {content_type!r}; send multipart/form-data or application/json")


@router.post(
    "/v1/check/image",
    response_model=Decision,
    openapi_extra=_CHECK_IMAGE_BODY,
    responses={400: {"description": "Invalid image."}, 415: {"description": "Unsupported content type."}},
)
async def check_image(request: Request, principal: PrincipalDep, state: StateDep) -> Response:
    """The full decision for one image; with `prompt`, the prompt is checked first (minors rule)."""
    runtime = state.runtime_for(principal)
    image, prompt = await _image_request(request)
    prompt_decision = None
    if prompt is not None:
        text = state.validate_text(prompt, runtime, "prompt")
        [prompt_decision] = await state.check_prompts(runtime, [text], principal)
    [decision] = await check_image_bytes(state, runtime, [image], principal, prompt_decision)
    return json_response(decision)


@router.get("/v1/policy", response_model=PolicyResponse)
async def get_policy(principal: PrincipalDep, state: StateDep) -> PolicyResponse:
    """The policy that decides the caller's requests."""
    runtime = state.runtime_for(principal)
    return PolicyResponse(**runtime.policy_info(), tenant=principal.tenant)


@router.get("/healthz", response_model=Health, tags=["ops"])
async def healthz() -> Health:
    """The process is up and serving HTTP."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, tags=["ops"], responses={503: {"model": Health}})
async def readyz(request: Request) -> JSONResponse:
    """200 once every model is loaded; 503 while loading or if a classifier failed to load."""
    state = getattr(request.app.state, "fluxwarden", None)
    if state is None or not state.loaded:
        return JSONResponse(Health(status="loading").model_dump(), status_code=503)
    failed = {k: v for k, v in state.load_errors.items() if v}
    if failed:
        return JSONResponse(Health(status="degraded", detail=failed).model_dump(), status_code=503)
    detail = {"model": state.model_id, "tiny_random": str(state.settings.tiny_model).lower()}
    return JSONResponse(Health(status="ok", detail=detail).model_dump())


@router.get("/metrics", tags=["ops"], response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    state = getattr(request.app.state, "fluxwarden", None)
    body = state.metrics.render() if state is not None else b""
    return Response(body, media_type=CONTENT_TYPE_LATEST)
