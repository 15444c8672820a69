"""The structlog processor chain that turns a decision's fields into a validated `AuditEvent`.

Each processor does one thing (stamp time, assign an id, tag the node, apply the input policy,
validate), so operators can read — and tests can check — exactly what reaches the log. The chain
ends by handing an `AuditEvent` to the sink; the sink seals it into the hash chain under its lock.
Raw inputs travel only under private `_input_*` keys and are consumed by `apply_input_policy`;
`extra="forbid"` on the event makes anything else that slipped in an error, not a leak.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

from audit.events import AuditEvent, new_event_id
from audit.inputs import image_record, text_record
from audit.sink import AuditSink

_INPUT_KEYS = (
    "_input_text",
    "_store_inputs",
    "_redact_terms",
    "_image_bytes",
    "_image_sha256",
    "_image",
    "_store_images",
)


def add_event_id(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict.setdefault("id", new_event_id())
    return event_dict


def event_name_to_kind(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog's positional message ("decision", "generation") is the event's kind."""
    event_dict["kind"] = event_dict.pop("event")
    return event_dict


class TagNode:
    """Add the node name and residency tag (e.g. "eu-west/fra1") configured on the sink."""

    def __init__(self, node: str | None, residency: str | None) -> None:
        self.node, self.residency = node, residency

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        if self.node is not None:
            event_dict.setdefault("node", self.node)
        if self.residency is not None:
            event_dict.setdefault("residency", self.residency)
        return event_dict


class ApplyInputPolicy:
    """Replace raw inputs by what the policy allows to be kept (see audit.inputs)."""

    def __init__(self, sink: AuditSink) -> None:
        self._sink = sink

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        raw = {k: event_dict.pop(k) for k in _INPUT_KEYS if k in event_dict}
        if raw.get("_input_text") is not None:
            event_dict["input"] = text_record(
                raw["_input_text"],
                raw.get("_store_inputs", "hash"),
                digest=self._sink.salted_digest,
                redact_terms=raw.get("_redact_terms", ()),
            )
        elif any(raw.get(k) is not None for k in ("_image_bytes", "_image_sha256", "_image")):
            event_dict["input"] = image_record(
                raw.get("_store_images", "hash"),
                image_bytes=raw.get("_image_bytes"),
                image_sha256=raw.get("_image_sha256"),
                image=raw.get("_image"),
                store_file=getattr(self._sink, "store_input_file", None),
            )
        return event_dict


def to_audit_event(_: WrappedLogger, __: str, event_dict: EventDict) -> tuple[tuple[AuditEvent], dict[str, Any]]:
    """Validate the finished dict; the wrapped sink receives the model as its only argument."""
    return (AuditEvent.model_validate(event_dict),), {}


class _SinkWriter:
    """The structlog 'logger' at the end of the chain: every level writes to the sink."""

    def __init__(self, sink: AuditSink) -> None:
        self._sink = sink

    def msg(self, event: AuditEvent) -> str:
        return self._sink.write(event)

    info = warning = error = msg


def audit_processors(sink: AuditSink) -> list[Any]:
    return [
        add_event_id,
        structlog.processors.TimeStamper(fmt="%Y-%m-%dT%H:%M:%S.%fZ", utc=True, key="ts"),
        event_name_to_kind,
        TagNode(getattr(sink, "node", None), getattr(sink, "residency", None)),
        ApplyInputPolicy(sink),
        to_audit_event,
    ]


_loggers: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def audit_logger(sink: AuditSink) -> Any:
    """The structlog logger bound to `sink` (one per sink, built on first use)."""
    try:
        return _loggers[sink]
    except (KeyError, TypeError):
        pass
    logger = structlog.wrap_logger(
        _SinkWriter(sink), processors=audit_processors(sink), wrapper_class=structlog.BoundLogger
    )
    with contextlib.suppress(TypeError):  # a sink that cannot be weakly referenced: rebuilt each time
        _loggers[sink] = logger
    return logger
