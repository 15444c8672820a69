"""Prompt-stage latency: model load, single-prompt p50/p95 and batched throughput, per backend.

    .venv/bin/python bench/prompt_latency.py [--repeats 200] [--threads 2]

"Full stage" is what a request pays: normalise + every prompt classifier of the default policy
(lexicon, names, minors, embedding, language) + the policy engine, via `Moderator.check_prompt(s)`. The
embedding classifier runs on onnxruntime (exported once into the cache dir) or on torch. Figures
are medians over real T2I prompts (PartiPrompts' test part); run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _prompts() -> list[str]:
    from scripts import prompt_data

    rows = prompt_data.load_training_rows(general=False, written=False)
    return [r.text for r in rows if r.source == "partiprompts" and r.split == "test"]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(backend: str, prompts: list[str], repeats: int, threads: int, batch: int) -> dict[str, float]:
    from classifiers.embedding import EmbeddingClassifier
    from moderation.moderator import Moderator

    backend, _, precision = backend.partition("-")  # "openvino-bf16" -> openvino in bf16
    t0 = time.perf_counter()
    clf = EmbeddingClassifier.from_options({"backend": backend, "threads": threads, "precision": precision or "f32"})
    load_s = time.perf_counter() - t0
    if clf.encoder.backend != backend:
        raise RuntimeError(f"asked for {backend}, got {clf.encoder.backend}")
    moderator = Moderator.from_policy("default", classifiers={"embedding": clf})
    t0 = time.perf_counter()
    moderator.preload()
    stack_load_s = time.perf_counter() - t0 + load_s
    for text in prompts[:20]:  # warm-up: first calls allocate
        moderator.check_prompt(text)
    single = []
    for i in range(repeats):
        text = prompts[i % len(prompts)]
        t0 = time.perf_counter()
        moderator.check_prompt(text)
        single.append((time.perf_counter() - t0) * 1000)
    chunk = (prompts * (1 + batch // len(prompts)))[:batch]
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        moderator.check_prompts(chunk)
        rounds.append(time.perf_counter() - t0)
    moderator.close()
    return {
        "embedding_load_s": load_s,
        "stage_load_s": stack_load_s,
        "p50_ms": statistics.median(single),
        "p95_ms": _pct(single, 0.95),
        "batch_prompts_per_s": batch / statistics.median(rounds),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument(
        "--backends", nargs="*", default=["openvino", "openvino-bf16", "onnx", "torch"], help="BACKEND[-PRECISION]"
    )
    args = ap.parse_args()
    prompts = _prompts()
    words = statistics.median(len(p.split()) for p in prompts)
    print(f"{len(prompts)} PartiPrompts test prompts, median {words:.0f} words; {args.threads} threads; "
          f"cpu_count={os.cpu_count()}")  # fmt: skip
    print("| backend | embedding load (s) | stage load (s) | p50 (ms) | p95 (ms) | batched (prompts/s) |")
    print("|---|---|---|---|---|---|")
    for backend in args.backends:
        r = measure(backend, prompts, args.repeats, args.threads, args.batch)
        print(f"| {backend} | {r['embedding_load_s']:.2f} | {r['stage_load_s']:.2f} | {r['p50_ms']:.1f} | "
              f"{r['p95_ms']:.1f} | {r['batch_prompts_per_s']:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
