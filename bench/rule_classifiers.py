"""Rule-based prompt classifiers (lexicon, names, minors): per-prompt latency and benign hit counts.

    .venv/bin/python bench/rule_classifiers.py [--data /work/shared/datasets] [--coco]

Latency: median and p95 of `classify([one prompt])` over PartiPrompts + DrawBench (1,832 benign
T2I prompts), after building once. Benign hits: prompts whose score reaches the default policy's
lowest (flag) threshold for some category: every such hit on these sets is a false positive or a
real name/cue in a benign prompt, and is printed so a person can tell which.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _rows(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh if line.strip()]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/work/shared/datasets"))
    ap.add_argument("--coco", action="store_true", help="also count hits on the 30,000 COCO captions")
    ap.add_argument("--show", type=int, default=20, help="benign hits to print per classifier")
    args = ap.parse_args()

    from classifiers.registry import build
    from moderation.normalise import normalise
    from moderation.policy import load_policy
    from moderation.types import Stage

    rules = load_policy("default").rules(Stage.PROMPT)
    floor = {str(c): min(v for v in (r.flag, r.blur, r.block) if v is not None) for c, r in rules.items()}
    sets = {
        "parti+drawbench": _rows(args.data / "partiprompts/partiprompts.jsonl")
        + _rows(args.data / "drawbench/drawbench.jsonl")
    }
    if args.coco:
        sets["coco30k"] = _rows(args.data / "coco30k_captions/coco30k_captions.jsonl.gz")
    for name in ("lexicon", "names", "minors"):
        t0 = time.perf_counter()
        clf = build(name)
        build_s = time.perf_counter() - t0
        for set_name, texts in sets.items():
            normalised = [normalise(t) for t in texts]
            clf.classify(normalised[:20])
            times, hits = [], []
            for text, norm in zip(texts, normalised, strict=True):
                t0 = time.perf_counter()
                result = clf.classify([norm])[0]
                times.append((time.perf_counter() - t0) * 1000)
                if name == "minors":
                    hit = result.scores.get("minors", 0.0) >= 0.3  # a signal, reported for information
                else:
                    hit = any(s >= floor.get(c, 1.1) for c, s in result.scores.items())
                if hit:
                    hits.append((text, [e.rule for e in result.evidence]))
            print(
                f"{name:8s} {set_name:16s} n={len(texts):6d} build={build_s:.2f}s "
                f"p50={statistics.median(times):.3f}ms p95={_pct(times, 0.95):.3f}ms "
                f"{'signal' if name == 'minors' else 'flagged'}={len(hits)}"
            )
            for text, rules_hit in hits[: args.show]:
                print(f"    {text[:90]!r} {rules_hit[:3]}")


if __name__ == "__main__":
    main()
