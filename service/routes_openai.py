"""OpenAI-compatible endpoints: a client on OpenAI's SDK switches by changing `base_url`."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Sequence
from typing import Any, Literal

import structlog
from fastapi import APIRouter
from fastapi.responses import Response

from moderation.moderator import InputError
from moderation.taxonomy import OPENAI_CATEGORIES, Category
from moderation.types import Action, Decision, most_severe
from service.auth import Principal
from service.codec import decode_image_data, encode_b64
from service.deps import PrincipalDep, StateDep
from service.errors import APIError
from service.limits import check_size
from service.runtime import PolicyRuntime, ServiceState
from service.schemas import (
    FluxwardenVerdict,
    GenerationReport,
    ImageData,
    ImageGenerationRequest,
    ImagePart,
    ImageReport,
    ImagesResponse,
    InputType,
    ModelCard,
    ModelList,
    ModerationRequest,
    ModerationResponse,
    ModerationResult,
    PolicyInfo,
    TextPart,
)

log = structlog.get_logger("fluxwarden.service")
router = APIRouter(tags=["openai-compatible"])

# OpenAI scores these categories on images too (`category_applied_input_types`).
IMAGE_CATEGORIES = frozenset(
    {
        Category.SEXUAL,
        Category.VIOLENCE,
        Category.VIOLENCE_GRAPHIC,
        Category.SELF_HARM,
        Category.SELF_HARM_INTENT,
        Category.SELF_HARM_INSTRUCTIONS,
    }
)
_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request or refused by the content policy (code content_policy_violation)."},
    401: {"description": "Missing or wrong API key."},
    413: {"description": "Request body too large."},
}
_JSON = "application/json"


def json_response(model: Any, status: int = 200) -> Response:
    """Serialise with pydantic-core directly (no second validation pass)."""
    return Response(model.model_dump_json(), status_code=status, media_type=_JSON)


# --- /v1/moderations ---------------------------------------------------------------------------
Item = tuple[InputType, Any]  # ("text", str) | ("image", bytes)


def _input_groups(body: ModerationRequest) -> list[list[Item]]:
    """One group per result: each string alone; all parts of a multimodal list together."""
    value = body.input
    if isinstance(value, str):
        return [[("text", value)]]
    if all(isinstance(v, str) for v in value):
        return [[("text", v)] for v in value]
    group: list[Item] = []
    for index, part in enumerate(value):
        if isinstance(part, TextPart):
            group.append(("text", part.text))
        elif isinstance(part, ImagePart):
            group.append(("image", decode_image_data(part.image_url.url, param=f"input[{index}].image_url.url")))
    return [group]


def moderation_result(items: Sequence[tuple[InputType, Decision]]) -> ModerationResult:
    """One OpenAI result over several decisions: the max score and any trigger per category."""
    scores: dict[str, float] = {}
    signals: dict[str, float] = {}
    triggered: list[str] = []
    reasons = []
    for _, decision in items:
        for category, score in decision.category_scores.items():
            scores[category] = max(scores.get(category, 0.0), score)
        for signal, score in decision.signals.items():
            signals[signal] = max(signals.get(signal, 0.0), score)
        triggered += [c for c in decision.categories if c not in triggered]
        reasons += decision.reasons
    types = {t for t, _ in items}
    action = most_severe([d.action for _, d in items])
    applied: dict[str, list[InputType]] = {}
    for category in OPENAI_CATEGORIES:
        applied[category.value] = [
            t for t in ("text", "image") if t in types and (t == "text" or category in IMAGE_CATEGORIES)
        ]
    return ModerationResult(
        flagged=action is not Action.ALLOW,
        categories={c.value: c.value in triggered for c in OPENAI_CATEGORIES},
        category_scores={c.value: round(scores.get(c.value, 0.0), 6) for c in OPENAI_CATEGORIES},
        category_applied_input_types=applied,
        fluxwarden=FluxwardenVerdict(
            action=action,
            allowed=all(d.allowed for _, d in items),
            categories=triggered,
            category_scores={k: round(v, 6) for k, v in scores.items()},
            signals=signals,
            reasons=reasons,
            decision_ids=[d.id for _, d in items],
        ),
    )


@router.post("/v1/moderations", response_model=ModerationResponse, responses=_ERROR_RESPONSES)
async def create_moderation(body: ModerationRequest, principal: PrincipalDep, state: StateDep) -> Response:
    """Classify text and images against the caller's policy, in OpenAI's moderation format."""
    runtime = state.runtime_for(principal)
    groups = _input_groups(body)
    total = sum(len(g) for g in groups)
    if total > state.settings.max_inputs:
        raise APIError(
            400, f"{total} inputs; this server accepts at most {state.settings.max_inputs} per request", param="input"
        )
    single = isinstance(body.input, str)
    texts: list[str] = []
    images: list[bytes] = []
    for g, group in enumerate(groups):
        for p, (kind, value) in enumerate(group):
            label = "input" if single else f"input[{g if len(groups) > 1 else p}]"
            if kind == "text":
                texts.append(state.validate_text(value, runtime, label))
            else:
                images.append(value)
    text_decisions = await state.check_prompts(runtime, texts, principal) if texts else []
    image_decisions = await check_image_bytes(state, runtime, images, principal) if images else []
    text_iter, image_iter = iter(text_decisions), iter(image_decisions)
    results = [
        moderation_result([(kind, next(text_iter) if kind == "text" else next(image_iter)) for kind, _ in group])
        for group in groups
    ]
    policy = runtime.policy
    return json_response(
        ModerationResponse(
            id=f"modr-{uuid.uuid4().hex}",
            model=body.model or f"fluxwarden-{policy.id}",
            results=results,
            fluxwarden={"policy": PolicyInfo(**runtime.policy_info())},
        )
    )


async def check_image_bytes(
    state: ServiceState,
    runtime: PolicyRuntime,
    images: list[bytes],
    principal: Principal,
    prompt: Decision | None = None,
) -> list[Decision]:
    """Image decisions from the pool (decoding included), counted in the metrics."""
    context = principal.audit_context() if runtime.moderator.audit is not None else None
    start = time.perf_counter()
    decisions: list[Decision] = await state.run_blocking(
        lambda: runtime.moderator.check_images(images, prompt_decisions=prompt, context=context or None)
    )
    state.metrics.stage_latency.labels("image").observe(time.perf_counter() - start)
    state.metrics.record_decisions(decisions)
    return decisions


# --- /v1/images/generations ----------------------------------------------------------------------
def refusal(stage: Literal["input", "output"], decisions: Sequence[Decision]) -> APIError:
    """gpt-image's refusal: 400, code content_policy_violation, moderation_details {stage, categories}."""
    categories = list(dict.fromkeys(c for d in decisions for c in d.categories))
    # A refusal that no category explains (the prompt's language) says why; a classifier error's
    # text stays in the decision, out of the message.
    language = list(dict.fromkeys(r.message for d in decisions for r in d.reasons if r.code == "other_language"))
    what = "prompt" if stage == "input" else "every generated image"
    detail = f" ({', '.join(categories + language)})" if categories or language else ""
    return APIError(
        400,
        f"Your request was rejected by the content policy: the {what} was blocked{detail}.",
        param="prompt" if stage == "input" else None,
        code="content_policy_violation",
        moderation_details={"stage": stage, "categories": categories},
        fluxwarden={"decisions": [d.model_dump(mode="json") for d in decisions]},
    )


def _generation_params(body: ImageGenerationRequest, state: ServiceState) -> dict[str, Any]:
    settings = state.settings
    if body.response_format == "url":
        raise APIError(
            400,
            "response_format=url is not supported: the sidecar does not host images; use b64_json",
            param="response_format",
            code="unsupported_parameter",
        )
    n = 1 if body.n is None else body.n
    if not 1 <= n <= settings.max_n:
        raise APIError(400, f"n must be between 1 and {settings.max_n}, got {n}", param="n", code="invalid_n")
    width, height = check_size(body.size, default=settings.default_size, max_pixels=settings.max_image_pixels)
    steps = settings.steps_default() if body.num_inference_steps is None else body.num_inference_steps
    if not 1 <= steps <= settings.max_steps:
        raise APIError(
            400,
            f"num_inference_steps must be between 1 and {settings.max_steps}, got {steps}",
            param="num_inference_steps",
        )
    params: dict[str, Any] = {
        "num_images_per_prompt": n,
        "width": width,
        "height": height,
        "num_inference_steps": steps,
        "seed": body.seed if body.seed is not None else secrets.randbelow(2**32),
    }
    if body.guidance_scale is not None:
        params["guidance_scale"] = body.guidance_scale
    return params


@router.post("/v1/images/generations", response_model=ImagesResponse, responses=_ERROR_RESPONSES)
async def create_image(body: ImageGenerationRequest, principal: PrincipalDep, state: StateDep) -> Response:
    """Generate images; the prompt is checked first and every image after, as the policy says."""
    from moderation.pipeline import PromptBlockedError, UncheckableRequestError

    if state.pipe is None:
        raise APIError(503, "image generation is disabled on this server (--model none)", code="generation_disabled")
    runtime = state.runtime_for(principal)
    params = _generation_params(body, state)
    prompt = state.validate_text(body.prompt, runtime, "prompt")
    # A refused prompt is answered at once, without waiting for the generator; the pipeline
    # wrapper checks it again right before generating (it never trusts an earlier check).
    [first] = await state.check_prompts(runtime, [prompt], principal)
    if not first.allowed:
        log.info("prompt_blocked", decision_id=first.id, categories=list(first.categories), tenant=principal.tenant)
        raise refusal("input", [first])
    try:
        output = await state.generate(runtime, prompt=prompt, **params)
    except PromptBlockedError as exc:
        raise refusal("input", exc.decisions) from None
    except (InputError, UncheckableRequestError) as exc:
        raise APIError(400, str(exc), param="prompt", code="invalid_prompt") from None
    fmt = body.output_format or "png"
    reports, data = await state.run_blocking(_render, output, fmt)
    state.metrics.record_decisions(output.image_decisions)
    for decision in output.image_decisions:
        state.metrics.stage_latency.labels("image").observe(decision.latency_ms / 1000)
    if state.audit is not None:
        await state.run_blocking(_record_generation, state, runtime, principal, output, params)
    if not data:
        log.info("images_blocked", request_id=output.request_id, count=len(reports), tenant=principal.tenant)
        raise refusal("output", output.image_decisions)
    return json_response(
        ImagesResponse(
            created=int(time.time()),
            data=data,
            size=f"{params['width']}x{params['height']}",
            output_format=fmt,
            fluxwarden=GenerationReport(
                request_id=output.request_id,
                model=state.model_id or "none",
                tiny_random=state.settings.tiny_model,
                seed=params["seed"],
                steps=params["num_inference_steps"],
                guidance_scale=params.get("guidance_scale"),
                prompt_decision=output.prompt_decision or first,
                images=reports,
                policy=PolicyInfo(**runtime.policy_info()),
            ),
        )
    )


def _render(output: Any, fmt: str) -> tuple[list[ImageReport], list[ImageData]]:
    """Encode what may be delivered; a blocked image is dropped whatever the policy's blocked_output."""
    from moderation.images import encode_image

    delivered_images = iter(output.images)
    reports: list[ImageReport] = []
    data: list[ImageData] = []
    for index, (decision, delivered) in enumerate(zip(output.image_decisions, output.delivered, strict=True)):
        image = next(delivered_images) if delivered else None
        keep = image is not None and decision.action is not Action.BLOCK
        if keep:
            data.append(ImageData(b64_json=encode_b64(encode_image(image, fmt.upper()))))
        reports.append(
            ImageReport(
                index=index,
                delivered=keep,
                data_index=len(data) - 1 if keep else None,
                action=decision.action,
                blurred=keep and decision.action is Action.BLUR,
                categories=list(decision.categories),
                decision=decision,
            )
        )
    return reports, data


def _record_generation(
    state: ServiceState, runtime: PolicyRuntime, principal: Principal, output: Any, params: dict[str, Any]
) -> None:
    from audit import record_generation

    decisions = output.image_decisions
    record_generation(
        state.audit,
        {
            "model_id": state.model_id,
            "seed": params["seed"],
            "steps": params["num_inference_steps"],
            "width": params["width"],
            "height": params["height"],
            "guidance_scale": params.get("guidance_scale"),
            "num_images": len(decisions),
            "prompt_decision_id": output.prompt_decision.id if output.prompt_decision else None,
            "image_decision_ids": tuple(d.id for d in decisions),
        },
        action=most_severe([d.action for d in decisions]).value,
        allowed=any(d.allowed for d in decisions),
        policy=runtime.policy_info(),
        request_id=output.request_id,
        tenant=principal.tenant,
        key_id=principal.key_id,
    )


# --- /v1/models ----------------------------------------------------------------------------------
@router.get("/v1/models", response_model=ModelList)
async def list_models(principal: PrincipalDep, state: StateDep) -> ModelList:
    """The moderation model (the caller's policy) and the image model, with whether it is the tiny random one."""
    runtime = state.runtime_for(principal)
    created = int(time.time())
    cards = [
        ModelCard(
            id=f"fluxwarden-{runtime.policy.id}",
            created=created,
            owned_by="fluxwarden",
            fluxwarden={"kind": "moderation", "policy_version": runtime.policy.version},
        )
    ]
    if state.model_id is not None:
        note = "random weights: images are noise; configure --model" if state.settings.tiny_model else None
        cards.append(
            ModelCard(
                id=state.model_id,
                created=created,
                owned_by="fluxwarden",
                fluxwarden={"kind": "image", "tiny_random": state.settings.tiny_model, "note": note},
            )
        )
    return ModelList(data=cards)
