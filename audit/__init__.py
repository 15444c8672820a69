"""Tamper-evident audit log: what the system decided, why, under which policy — never raw inputs
unless the policy says so.

Public API (what the CLI, the pipeline wrapper and the service call):

    log = audit.open_log(dir)                       # AuditLog; options from FLUXWARDEN_AUDIT_* env
    audit.record_decision(log, decision, input_text=prompt, store_inputs=policy.audit.store_inputs,
                          request_id=..., tenant=..., key_id=..., generation=None) -> event id
    audit.record_decision(log, decision, image_bytes=png, store_images=policy.audit.store_images)
    audit.record_generation(log, {"model_id": ..., "seed": ..., "steps": ..., "width": ..., "height": ...},
                            action="allow", allowed=True, request_id=...) -> event id
    audit.resolve_audit_dir(cli_value, required=policy.audit.required) -> Path | None
    log.close()                                     # signs a final checkpoint

Reviewing: `fluxwarden audit verify|query|show|stats|export|prune` (audit.cli.app).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from audit.events import AuditEvent, GenerationInfo, InputRecord
    from audit.record import record_decision, record_generation
    from audit.sink import AuditLog, AuditSink, AuditWriteError

# Resolved on first use, so that `fluxwarden audit query --help` does not pay for structlog,
# pydantic and cryptography (the review commands need none of the writing machinery).
_LAZY = {
    "AuditEvent": "audit.events",
    "GenerationInfo": "audit.events",
    "InputRecord": "audit.events",
    "record_decision": "audit.record",
    "record_generation": "audit.record",
    "AuditLog": "audit.sink",
    "AuditSink": "audit.sink",
    "AuditWriteError": "audit.sink",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'audit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


AUDIT_DIR_ENV = "FLUXWARDEN_AUDIT_DIR"

__all__ = [
    "AUDIT_DIR_ENV",
    "AuditDirRequiredError",
    "AuditEvent",
    "AuditLog",
    "AuditSink",
    "AuditWriteError",
    "GenerationInfo",
    "InputRecord",
    "open_log",
    "record_decision",
    "record_generation",
    "resolve_audit_dir",
]


class AuditDirRequiredError(RuntimeError):
    """The policy says `audit.required: true` and no audit directory was given."""


def resolve_audit_dir(value: str | Path | None, *, required: bool, policy_id: str | None = None) -> Path | None:
    """The audit directory from an explicit value or FLUXWARDEN_AUDIT_DIR; refuse if required and absent."""
    chosen = value if value not in (None, "") else os.environ.get(AUDIT_DIR_ENV) or None
    if chosen is None:
        if required:
            who = f"policy {policy_id!r}" if policy_id else "the policy"
            raise AuditDirRequiredError(
                f"{who} requires an audit log (audit.required: true): pass --audit-dir DIR or set {AUDIT_DIR_ENV}"
            )
        return None
    return Path(chosen)


def open_log(directory: str | Path, **options: Any) -> AuditLog:
    """An `AuditLog` with defaults from the environment, overridden by explicit `options`.

    FLUXWARDEN_AUDIT_FSYNC (always|batch), FLUXWARDEN_AUDIT_ROTATE_BYTES, FLUXWARDEN_AUDIT_NODE,
    FLUXWARDEN_AUDIT_RESIDENCY, FLUXWARDEN_AUDIT_SIGNING_KEY, FLUXWARDEN_AUDIT_CHECKPOINT_EVERY.
    """
    env = os.environ
    defaults: dict[str, Any] = {}
    if env.get("FLUXWARDEN_AUDIT_FSYNC"):
        defaults["fsync"] = env["FLUXWARDEN_AUDIT_FSYNC"]
    if env.get("FLUXWARDEN_AUDIT_ROTATE_BYTES"):
        defaults["rotate_bytes"] = int(env["FLUXWARDEN_AUDIT_ROTATE_BYTES"])
    if env.get("FLUXWARDEN_AUDIT_CHECKPOINT_EVERY"):
        defaults["checkpoint_every"] = int(env["FLUXWARDEN_AUDIT_CHECKPOINT_EVERY"])
    if env.get("FLUXWARDEN_AUDIT_SIGNING_KEY"):
        defaults["signing_key_path"] = env["FLUXWARDEN_AUDIT_SIGNING_KEY"]
    from audit.sink import AuditLog

    return AuditLog(directory, **(defaults | options))
