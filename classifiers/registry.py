"""Name → factory registry, so policies name classifiers and nothing imports torch until used.

Entries are "module:attribute" strings resolved lazily; a factory takes the classifier's
`options` mapping from the policy (plus the resolved word lists) as keyword arguments.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from classifiers.base import Classifier, ClassifierLoadError
from moderation.types import Stage

# name -> (stage, "module:factory")
_BUILTIN: dict[str, tuple[Stage, str]] = {
    "lexicon": (Stage.PROMPT, "classifiers.lexicon:LexiconClassifier.from_options"),
    "names": (Stage.PROMPT, "classifiers.names:NamesClassifier.from_options"),
    "minors": (Stage.PROMPT, "classifiers.minors:MinorsCueClassifier.from_options"),
    "language": (Stage.PROMPT, "classifiers.language:LanguageClassifier.from_options"),
    "embedding": (Stage.PROMPT, "classifiers.embedding:EmbeddingClassifier.from_options"),
    "hf_sequence": (Stage.PROMPT, "classifiers.hf_sequence:HFSequenceClassifier.from_options"),
    "nudenet": (Stage.IMAGE, "classifiers.nudenet:NudeNetClassifier.from_options"),
    "open_nsfw": (Stage.IMAGE, "classifiers.open_nsfw:OpenNSFWClassifier.from_options"),
    "hf_image": (Stage.IMAGE, "classifiers.hf_image:HFImageClassifier.from_options"),
}
_EXTRA: dict[str, tuple[Stage, Callable[..., Classifier]]] = {}


def register(name: str, stage: Stage, factory: Callable[..., Classifier]) -> None:
    """Register an operator-provided classifier factory under `name` (e.g. from a plugin)."""
    _EXTRA[name] = (stage, factory)


def names(stage: Stage | None = None) -> list[str]:
    everything = {**{k: v[0] for k, v in _BUILTIN.items()}, **{k: v[0] for k, v in _EXTRA.items()}}
    return sorted(k for k, s in everything.items() if stage is None or s is stage)


def stage_of(name: str) -> Stage:
    if name in _EXTRA:
        return _EXTRA[name][0]
    if name in _BUILTIN:
        return _BUILTIN[name][0]
    raise KeyError(name)


def _resolve(target: str) -> Callable[..., Classifier]:
    module_name, _, attr_path = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr_path.split("."):
        obj = getattr(obj, part)
    return obj


def build(name: str, options: Mapping[str, Any] | None = None, **context: Any) -> Classifier:
    """Construct classifier `name`; `context` carries shared inputs such as resolved word lists."""
    if name in _EXTRA:
        factory = _EXTRA[name][1]
    elif name in _BUILTIN:
        factory = _resolve(_BUILTIN[name][1])
    else:
        raise ClassifierLoadError(f"unknown classifier {name!r}; known: {', '.join(names())}")
    try:
        return factory(options=dict(options or {}), **context)
    except ClassifierLoadError:
        raise
    except Exception as exc:  # a model file missing, an option of the wrong type, ...
        raise ClassifierLoadError(f"classifier {name!r} failed to load: {type(exc).__name__}: {exc}") from exc
