"""fluxwarden's public API: `Moderator`, `ModeratedPipeline`, policies and decision types.

Attributes resolve lazily so that `import moderation` (and `fluxwarden --help`) stays instant.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Moderator": "moderation.moderator",
    "InputError": "moderation.moderator",
    "ModeratedPipeline": "moderation.pipeline",
    "Policy": "moderation.policy",
    "PolicyError": "moderation.policy",
    "load_policy": "moderation.policy",
    "Action": "moderation.types",
    "Decision": "moderation.types",
    "Stage": "moderation.types",
    "Category": "moderation.taxonomy",
    "normalise": "moderation.normalise",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'moderation' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
