"""The one small interface every classifier implements.

A classifier *measures*: it returns per-category scores in [0, 1] and the evidence behind them,
one `ClassifierResult` per input, in input order. It never applies thresholds or decides; that
is the policy engine's job. Classifiers are batch-first because batching is where the speed is.

A classifier may set `inline = True` when it is pure Python and linear in its (length-capped)
input: the stage runner then calls it in the request's thread instead of the pool, which saves the
hand-off and the contention with model threads. Models never do: only pooled work has a deadline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from moderation.types import ClassifierResult, Stage

if TYPE_CHECKING:
    from moderation.images import LoadedImage
    from moderation.normalise import NormalisedText


@runtime_checkable
class PromptClassifier(Protocol):
    name: str
    version: str
    stage: Stage  # Stage.PROMPT

    def classify(self, texts: Sequence[NormalisedText]) -> list[ClassifierResult]: ...


@runtime_checkable
class ImageClassifier(Protocol):
    name: str
    version: str
    stage: Stage  # Stage.IMAGE

    def classify(self, images: Sequence[LoadedImage]) -> list[ClassifierResult]: ...


Classifier = PromptClassifier | ImageClassifier


class ClassifierLoadError(RuntimeError):
    """A classifier could not be constructed (missing model file, bad option)."""
