"""Request and response bodies: OpenAI's shapes for the compatible endpoints, fluxwarden's for the rest.

fluxwarden-only information rides in a `fluxwarden` field, which the OpenAI SDK keeps as an extra
attribute and otherwise ignores, so existing client code keeps working unchanged.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from moderation.types import Action, Decision, Reason

InputType = Literal["text", "image"]


class _Request(BaseModel):
    """Unknown fields are refused, as OpenAI refuses unrecognized request arguments."""

    model_config = ConfigDict(extra="forbid")


# --- /v1/moderations ---------------------------------------------------------------------------
class TextPart(_Request):
    type: Literal["text"]
    text: str


class ImageURL(_Request):
    url: str = Field(description="A data URL (data:image/png;base64,...); the sidecar fetches nothing remote.")


class ImagePart(_Request):
    type: Literal["image_url"]
    image_url: ImageURL


InputPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ModerationRequest(_Request):
    input: str | Annotated[list[str], Field(min_length=1)] | Annotated[list[InputPart], Field(min_length=1)] = Field(
        description="A string, a list of strings (one result each) or a list of text/image parts (one result)."
    )
    model: str | None = Field(default=None, description="Accepted for compatibility; the tenant's policy decides.")


class FluxwardenVerdict(BaseModel):
    """fluxwarden's own view of one moderation result: every category, the action and why."""

    action: Action
    allowed: bool
    categories: list[str] = Field(description="Every category that met a non-allow threshold, extras included.")
    category_scores: dict[str, float] = Field(description="Scores of every category, extras included.")
    signals: dict[str, float] = Field(default_factory=dict)
    reasons: list[Reason] = Field(default_factory=list)
    decision_ids: list[str] = Field(description="Audit decision ids (one per text or image checked).")


class ModerationResult(BaseModel):
    flagged: bool
    categories: dict[str, bool] = Field(description="OpenAI's 13 categories.")
    category_scores: dict[str, float] = Field(description="OpenAI's 13 categories.")
    category_applied_input_types: dict[str, list[InputType]]
    fluxwarden: FluxwardenVerdict


class PolicyInfo(BaseModel):
    id: str
    version: str
    sha256: str


class ModerationResponse(BaseModel):
    id: str
    model: str
    results: list[ModerationResult]
    fluxwarden: dict[str, PolicyInfo] = Field(description="{'policy': the policy that decided}.")


# --- /v1/images/generations ----------------------------------------------------------------------
class ImageGenerationRequest(_Request):
    prompt: str = Field(description="What to draw; checked before anything is generated.")
    model: str | None = Field(default=None, description="Accepted for compatibility; the served model is used.")
    n: int | None = Field(default=1, description="Number of images (capped by the server's max_n).")
    size: str | None = Field(default=None, description="WIDTHxHEIGHT, multiples of 16, or auto.")
    response_format: Literal["b64_json", "url"] | None = Field(default=None, description="Only b64_json is served.")
    output_format: Literal["png", "jpeg", "webp"] | None = None
    quality: Literal["auto", "low", "medium", "high", "standard", "hd"] | None = Field(
        default=None, description="Accepted and ignored; use num_inference_steps."
    )
    style: Literal["vivid", "natural"] | None = Field(default=None, description="Accepted and ignored.")
    background: Literal["auto", "opaque"] | None = None
    moderation: Literal["auto", "low"] | None = Field(
        default=None, description="Accepted and ignored: the tenant's policy decides what is allowed."
    )
    user: str | None = Field(default=None, max_length=256)
    safety_identifier: str | None = Field(default=None, max_length=256)
    stream: Literal[False] | None = None
    # FLUX parameters (OpenAI SDK: extra_body={...}).
    num_inference_steps: int | None = Field(default=None, description="Denoising steps.")
    guidance_scale: float | None = Field(default=None, ge=0.0, le=50.0)
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1, description="Same seed, same image.")


class ImageData(BaseModel):
    b64_json: str
    revised_prompt: str | None = None


class ImageReport(BaseModel):
    """What the image stage decided for one generated image, delivered or not."""

    index: int = Field(description="Position among the generated images.")
    delivered: bool = Field(description="False when the image was blocked and dropped from `data`.")
    data_index: int | None = Field(description="Position in `data`, when delivered.")
    action: Action
    blurred: bool
    categories: list[str]
    decision: Decision


class GenerationReport(BaseModel):
    request_id: str
    model: str
    tiny_random: bool = Field(description="True when the served model has random weights (images are noise).")
    seed: int
    steps: int
    guidance_scale: float | None
    prompt_decision: Decision
    images: list[ImageReport]
    policy: PolicyInfo


class ImagesResponse(BaseModel):
    created: int
    data: list[ImageData]
    size: str
    output_format: Literal["png", "jpeg", "webp"]
    fluxwarden: GenerationReport


# --- native --------------------------------------------------------------------------------------
class CheckPromptRequest(_Request):
    prompt: str = Field(description="The prompt to check.")


class CheckImageJSON(_Request):
    image: str = Field(description="Base64 image (PNG/JPEG/WebP) or a data URL.")
    prompt: str | None = Field(
        default=None, description="The prompt that produced it: checked first, so the minors rule can apply."
    )


class PolicyResponse(PolicyInfo):
    tenant: str | None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    fluxwarden: dict[str, str | bool | None] = Field(default_factory=dict)


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    status: Literal["ok", "loading", "degraded"]
    detail: dict[str, str | None] = Field(default_factory=dict)
