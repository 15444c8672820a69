"""Shared builders for audit tests: real decisions and real logs in tmp directories."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import audit
from audit.files import list_segments
from moderation.types import Action, Decision, Reason, Stage

POLICY_SHA = "c0ffee" + "0" * 58


def make_decision(action: str = "block", *, stage: str = "prompt", matched: str | None = None) -> Decision:
    act = Action(action)
    flagged = act is not Action.ALLOW
    return Decision(
        stage=Stage(stage),
        action=act,
        allowed=act is not Action.BLOCK,
        categories=("sexual",) if flagged else (),
        category_scores={"sexual": 0.91 if flagged else 0.02, "violence": 0.01},
        reasons=(
            (
                Reason(
                    code="threshold",
                    category="sexual",
                    action=act,
                    classifier="lexicon",
                    rule="term:explicit",
                    score=0.91,
                    threshold=0.5,
                    matched=matched,
                    message=f"sexual score 0.91 >= {action} threshold 0.50"
                    + (f" (matched {matched!r})" if matched else ""),
                ),
            )
            if flagged
            else ()
        ),
        policy_id="default",
        policy_version="2026.11.1",
        policy_sha256=POLICY_SHA,
        classifiers=("lexicon@3", "embedding@minilm-1"),
        latency_ms=4.5,
    )


@pytest.fixture
def decision() -> Callable[..., Decision]:
    return make_decision


def write_events(directory: Path, n: int, **options: object) -> list[str]:
    """Write n alternating block/allow prompt decisions and close (which signs a checkpoint)."""
    with audit.AuditLog(directory, **options) as log:
        return [
            audit.record_decision(log, make_decision("block" if i % 2 else "allow"), input_text=f"prompt number {i}")
            for i in range(n)
        ]


def only_segment(directory: Path) -> Path:
    segments = list_segments(directory)
    assert len(segments) == 1
    return segments[0].path


def read_records(directory: Path) -> list[dict]:
    import json

    out = []
    for seg in list_segments(directory):
        for line in seg.path.read_bytes().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out
