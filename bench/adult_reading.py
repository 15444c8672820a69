"""The adult reading of prompts that name a minor: which decisions the engine's rule changes.

    .venv/bin/python bench/adult_reading.py [--show 10]

A prompt that names a minor is also scored with its minor cues read as adults (the embedding
classifier's `sexual-if-adult` signal), and the engine derives sexual/minors from it once it
reaches the policy's lowest sexual threshold (moderation/engine.py). For each set this prints how
many prompts were read as adults and every default-policy decision that differs with the rule and
without it (its bar raised above any score). Only prompts with an adult reading can differ, so
only those are run twice. Sets: the *validation* part of every training source (where the bar was
checked), the evaluation sets of bench/prompt_eval.py, and bench/data/minors_requests.jsonl (31
requests and 8 child scenes written for this check; evaluation only, never trained on).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from scripts import prompt_data  # noqa: E402

REQUESTS = REPO / "bench" / "data" / "minors_requests.jsonl"


@contextmanager
def rule_off() -> Iterator[None]:
    from moderation import engine

    real = engine.adult_reading_bar
    engine.adult_reading_bar = lambda _rule: float("inf")  # type: ignore[assignment]
    try:
        yield
    finally:
        engine.adult_reading_bar = real  # type: ignore[assignment]


def sets() -> Iterator[tuple[str, list[str], list[int]]]:
    import prompt_eval

    val = [r for r in prompt_data.load_training_rows() if r.split == "val"]
    yield "validation (all sources)", [r.text for r in val], [int(r.unsafe) for r in val]
    for es in prompt_eval.eval_sets():
        yield es.name, es.texts, [int(y) for y in es.labels]
    rows = [json.loads(line) for line in REQUESTS.read_text("utf-8").splitlines() if line.strip()]
    yield "minors_requests", [r["text"] for r in rows], [int(r["label"] == "unsafe") for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--show", type=int, default=10, help="changed decisions to print per set")
    args = ap.parse_args()

    import prompt_eval

    from classifiers.minors import AdultReader
    from moderation.moderator import Moderator
    from moderation.normalise import normalise
    from moderation.policy import load_policy

    policy = load_policy("default")
    # As in bench/prompt_eval.py: a long batch on a busy 2-core box must not time out (fail closed).
    policy = policy.model_copy(update={"prompt": policy.prompt.model_copy(update={"timeout_s": 600.0})})
    moderator = Moderator(policy)
    reader = AdultReader(policy.word_lists)
    limit = policy.max_prompt_chars
    print("| set | prompts | read as adults (safe / unsafe) | decisions changed: safe | unsafe |")
    print("|---|---|---|---|---|")
    notes: list[str] = []
    for name, texts, labels in sets():
        # As in bench/prompt_eval.py: over-long texts cut, control characters (an input error) spaced.
        clipped = [prompt_eval.CONTROL.sub(" ", t[:limit]) for t in texts]
        picked = [(t, y) for t, y in zip(clipped, labels, strict=True) if reader(normalise(t))]
        batch = [t for t, _ in picked]
        with_rule = moderator.check_prompts(batch) if batch else []
        with rule_off():
            without = moderator.check_prompts(batch) if batch else []
        changed = [
            (t, y, old.action.value, new.action.value)
            for (t, y), old, new in zip(picked, without, with_rule, strict=True)
            if old.action != new.action
        ]
        safe = sum(1 for _, y in picked if y == 0)
        print(
            f"| {name} | {len(texts)} | {len(picked)} ({safe} / {len(picked) - safe}) | "
            f"{sum(1 for c in changed if c[1] == 0)} | {sum(1 for c in changed if c[1] == 1)} |"
        )
        notes += [f"{name}: {'unsafe' if y else 'safe'} {old} -> {new}: {t[:100]!r}" for t, y, old, new in changed][
            : args.show
        ]
    print("\nChanged decisions (without the rule -> with it):")
    for line in notes:
        print("  " + line)


if __name__ == "__main__":
    main()
