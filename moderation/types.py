"""Public value types shared by classifiers, the policy engine, audit and the service.

Classifiers *measure* (`ClassifierResult`), the engine *decides* (`Decision`). All are frozen
pydantic models so that they serialise to the same JSON everywhere (CLI, HTTP, audit log).
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Action(StrEnum):
    ALLOW = "allow"
    FLAG = "flag"
    BLUR = "blur"
    BLOCK = "block"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Action.ALLOW: 0, Action.FLAG: 1, Action.BLUR: 2, Action.BLOCK: 3}


def most_severe(actions: list[Action] | tuple[Action, ...]) -> Action:
    return max(actions, key=lambda a: a.severity, default=Action.ALLOW)


class Stage(StrEnum):
    PROMPT = "prompt"  # OpenAI's moderation_stage "input"
    IMAGE = "image"  # OpenAI's moderation_stage "output"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Span(_Frozen):
    """Where in which form of the text a rule matched (offsets are into that form)."""

    start: int
    end: int
    text: str
    form: str = "original"


class Evidence(_Frozen):
    """One observation behind a score: a matched term, a detector box, a model output."""

    label: str = Field(description="Category or signal this evidence supports.")
    score: float
    rule: str = Field(description="Stable id of what matched, e.g. 'term:nude' or 'EXPOSED_BREAST_F'.")
    span: Span | None = None
    box: tuple[int, int, int, int] | None = Field(default=None, description="x, y, w, h in pixels.")


class ClassifierResult(_Frozen):
    """One classifier's measurement of one input: scores in [0, 1], no thresholds, no verdict."""

    classifier: str
    version: str = "0"
    scores: dict[str, float] = Field(default_factory=dict)
    weak_scores: dict[str, float] = Field(
        default_factory=dict,
        description="Scores that rest on weak evidence only (a word-list topic word such as 'killed'): the engine "
        "counts one only if another classifier scores that category at least `corroboration_floor`, or if no "
        "other classifier scores the category at all.",
    )
    corroboration_floor: float = Field(default=0.0, ge=0.0, le=1.0)
    evidence: tuple[Evidence, ...] = ()
    error: str | None = Field(default=None, description="Set when the classifier failed; the engine fails closed.")
    latency_ms: float = 0.0


class Reason(_Frozen):
    """Why a category contributed to the decision; `code` is stable for clients."""

    code: Literal["threshold", "hard_block", "minors_rule", "classifier_error", "other_language"]
    category: str | None = None
    action: Action
    classifier: str | None = None
    rule: str | None = None
    score: float | None = None
    threshold: float | None = None
    matched: str | None = Field(default=None, description="The matched text or region, if policy allows showing it.")
    message: str


def new_decision_id() -> str:
    return f"dec_{uuid.uuid4().hex}"


class Decision(_Frozen):
    """The policy's verdict on one prompt or one image."""

    id: str = Field(default_factory=new_decision_id)
    stage: Stage
    action: Action
    allowed: bool = Field(description="False only for block; flag and blur still deliver (blurred) output.")
    categories: tuple[str, ...] = Field(default=(), description="Categories that met a non-allow threshold.")
    category_scores: dict[str, float] = Field(default_factory=dict)
    signals: dict[str, float] = Field(default_factory=dict)
    reasons: tuple[Reason, ...] = ()
    policy_id: str
    policy_version: str
    policy_sha256: str
    classifiers: tuple[str, ...] = Field(default=(), description="name@version of every classifier consulted.")
    blur_boxes: tuple[tuple[int, int, int, int], ...] = Field(
        default=(), description="Image regions to obscure when action is blur in regions mode."
    )
    latency_ms: float = 0.0

    @property
    def flagged(self) -> bool:
        return self.action is not Action.ALLOW
