"""The audit event: what a regulator is shown about one decision, built from a `Decision`.

The event is the schema of one JSON line in the log. It carries the verdict, the evidence that
drove it (scores, thresholds, rule ids), the exact policy (id, version, sha256) and classifier
versions, and — only as far as the policy allows — the input itself. Raw inputs never reach this
model: `audit.inputs` turns them into an `InputRecord` first.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from moderation.types import Action, Decision

EVENT_SCHEMA_VERSION = 1

EventKind = Literal["decision", "generation", "recovery", "retention"]
AuditStage = Literal["prompt", "image", "generation", "audit"]
StoreInputs = Literal["none", "hash", "redacted", "full"]
StoreImages = Literal["hash", "phash", "full"]


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FlaggedCategory(_Model):
    """A category that met a non-allow threshold: the score, the threshold it met, and the action."""

    category: str
    score: float | None = None
    threshold: float | None = None
    action: Action


class ReasonRecord(_Model):
    """A `Reason` without the matched text unless the input policy lets the text be stored."""

    code: str
    action: Action
    category: str | None = None
    classifier: str | None = None
    rule: str | None = None
    score: float | None = None
    threshold: float | None = None
    matched: str | None = None
    message: str | None = None


class PolicyRef(_Model):
    id: str
    version: str
    sha256: str


class ClassifierRef(_Model):
    name: str
    version: str


class GenerationInfo(_Model):
    """Parameters of one generation request, so a reviewer can tie an image to how it was made."""

    model_id: str | None = None
    seed: int | None = None
    steps: int | None = None
    width: int | None = None
    height: int | None = None
    guidance_scale: float | None = None
    num_images: int | None = None
    latency_ms: float | None = None
    prompt_decision_id: str | None = None
    image_decision_ids: tuple[str, ...] = ()


class InputRecord(_Model):
    """The input as the policy allows it to be kept: nothing, a digest, a redacted text, or all of it."""

    kind: Literal["text", "image"]
    mode: str = Field(description="none | hash | redacted | full (text); hash | phash | full (image).")
    chars: int | None = Field(default=None, description="Length of the text in characters.")
    bytes: int | None = Field(default=None, description="Size of the image file in bytes, when known.")
    salted_sha256: str | None = Field(
        default=None, description="HMAC-SHA256 of the UTF-8 text keyed with this log directory's salt."
    )
    sha256: str | None = Field(default=None, description="Plain SHA-256 of the image file (or its pixels).")
    phash: str | None = Field(default=None, description="64-bit difference hash of the image, hex.")
    text: str | None = Field(default=None, description="Redacted or full text, only when the policy says so.")
    path: str | None = Field(default=None, description="Stored image copy, relative to the log directory.")


class AuditEvent(_Model):
    """One line of the audit log, before the sink adds `seq`, `prev` and `hash`."""

    v: int = EVENT_SCHEMA_VERSION
    kind: EventKind = "decision"
    id: str = Field(default_factory=new_event_id)
    ts: str = Field(description="UTC time of recording, ISO 8601 with a Z suffix.")
    node: str | None = None
    residency: str | None = None
    request_id: str | None = None
    tenant: str | None = None
    key_id: str | None = Field(default=None, description="Identifier of the API key used; never the key itself.")
    stage: AuditStage
    action: Action | None = None
    allowed: bool | None = None
    decision_id: str | None = None
    flagged: tuple[FlaggedCategory, ...] = ()
    scores: dict[str, float] = Field(default_factory=dict)
    signals: dict[str, float] = Field(default_factory=dict)
    reasons: tuple[ReasonRecord, ...] = ()
    policy: PolicyRef | None = None
    classifiers: tuple[ClassifierRef, ...] = ()
    generation: GenerationInfo | None = None
    input: InputRecord | None = None
    latency_ms: float | None = None
    detail: dict[str, str | int | float | bool | None] | None = Field(
        default=None, description="Kind-specific facts for recovery and retention events."
    )


def split_classifier(ref: str) -> ClassifierRef:
    name, _, version = ref.partition("@")
    return ClassifierRef(name=name, version=version or "unknown")


def flagged_categories(decision: Decision) -> tuple[FlaggedCategory, ...]:
    """Each flagged category with the threshold of the most severe action it triggered."""
    out = []
    for category in decision.categories:
        best = None
        for reason in decision.reasons:
            if reason.category == category and (best is None or reason.action.severity > best.action.severity):
                best = reason
        out.append(
            FlaggedCategory(
                category=category,
                score=decision.category_scores.get(category, best.score if best else None),
                threshold=best.threshold if best else None,
                action=best.action if best else decision.action,
            )
        )
    return tuple(out)


def reason_records(decision: Decision, *, keep_matched: bool) -> tuple[ReasonRecord, ...]:
    """Reasons as stored: `matched` is prompt text, so it is kept only when the full text may be."""
    return tuple(
        ReasonRecord(
            code=r.code,
            action=r.action,
            category=r.category,
            classifier=r.classifier,
            rule=r.rule,
            score=r.score,
            threshold=r.threshold,
            matched=r.matched if keep_matched else None,
            message=r.message if keep_matched else _message_without_text(r.message, r.matched),
        )
        for r in decision.reasons
    )


def _message_without_text(message: str, matched: str | None) -> str:
    if matched and matched in message:
        return message.replace(matched, "[input]")
    return message
