"""The calls the rest of fluxwarden makes: record a decision, record a generation request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from audit.events import GenerationInfo, flagged_categories, reason_records, split_classifier
from audit.processors import audit_logger
from audit.sink import AuditSink

if TYPE_CHECKING:
    from PIL import Image

    from moderation.types import Decision


def record_decision(
    sink: AuditSink,
    decision: Decision,
    *,
    input_text: str | None = None,
    image_bytes: bytes | None = None,
    image_sha256: str | None = None,
    image: Image.Image | None = None,
    store_inputs: str = "hash",
    store_images: str = "hash",
    request_id: str | None = None,
    tenant: str | None = None,
    key_id: str | None = None,
    generation: GenerationInfo | Mapping[str, Any] | None = None,
) -> str:
    """Write one prompt- or image-stage decision; returns the audit event id.

    `input_text` is the prompt as received; it is kept only as `store_inputs` allows (the matched
    text in reasons likewise). Pass the image as `image_bytes` (file bytes, preferred), or
    `image_sha256` if it was already hashed, plus `image` (PIL) for a perceptual hash.
    Raises `AuditWriteError` if the event could not be written: callers should fail the request.
    """
    keep_text = store_inputs == "full"
    fields: dict[str, Any] = {
        "stage": decision.stage.value,
        "action": decision.action.value,
        "allowed": decision.allowed,
        "decision_id": decision.id,
        "flagged": flagged_categories(decision),
        "scores": dict(decision.category_scores),
        "signals": dict(decision.signals),
        "reasons": reason_records(decision, keep_matched=keep_text),
        "policy": {"id": decision.policy_id, "version": decision.policy_version, "sha256": decision.policy_sha256},
        "classifiers": tuple(split_classifier(c) for c in decision.classifiers),
        "latency_ms": decision.latency_ms,
        "request_id": request_id,
        "tenant": tenant,
        "key_id": key_id,
        "generation": _generation(generation),
    }
    if input_text is not None:
        fields |= {
            "_input_text": input_text,
            "_store_inputs": store_inputs,
            "_redact_terms": [(r.matched, r.category or "") for r in decision.reasons if r.matched],
        }
    elif image_bytes is not None or image_sha256 is not None or image is not None:
        fields |= {
            "_image_bytes": image_bytes,
            "_image_sha256": image_sha256,
            "_image": image,
            "_store_images": store_images,
        }
    return audit_logger(sink).info("decision", **{k: v for k, v in fields.items() if v is not None})


def record_generation(
    sink: AuditSink,
    generation: GenerationInfo | Mapping[str, Any],
    *,
    action: str,
    allowed: bool,
    policy: Mapping[str, str] | None = None,
    request_id: str | None = None,
    tenant: str | None = None,
    key_id: str | None = None,
    latency_ms: float | None = None,
) -> str:
    """Write the summary of one generation request (model, seed, steps, size, decision ids, outcome)."""
    fields: dict[str, Any] = {
        "stage": "generation",
        "action": action,
        "allowed": allowed,
        "generation": _generation(generation),
        "policy": dict(policy) if policy is not None else None,
        "request_id": request_id,
        "tenant": tenant,
        "key_id": key_id,
        "latency_ms": latency_ms,
    }
    return audit_logger(sink).info("generation", **{k: v for k, v in fields.items() if v is not None})


def _generation(value: GenerationInfo | Mapping[str, Any] | None) -> GenerationInfo | None:
    if value is None or isinstance(value, GenerationInfo):
        return value
    return GenerationInfo.model_validate(dict(value))
