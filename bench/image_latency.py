"""Image-stage latency and throughput, plus the benign photos' highest scores.

Target (issue): decode + both models + engine, p50 <= 25 ms per 1024x1024 image on 2 cores.
Inputs are the benign sample photos resized to 1024x1024 (real photo content, so decoders and
detectors do representative work), fed as JPEG bytes, PNG bytes and in-memory PIL images (what a
diffusers pipeline hands over). Prints medians and p90; asserts nothing. The machine's load
average is printed too: on a shared host, read figures taken under load as upper bounds.

    .venv/bin/python bench/image_latency.py [--repeats 40] [--batch 8] [--threads 1] [--backend onnxruntime]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PIL import Image  # noqa: E402

DATASETS = REPO.parent / "shared" / "datasets"
BENIGN_DIRS = [DATASETS / "sample_images_skimage" / "images", DATASETS / "sample_images_people" / "images"]
SIDE = 1024


def benign_paths() -> list[Path]:
    return sorted(p for d in BENIGN_DIRS if d.is_dir() for p in d.iterdir() if p.suffix in {".png", ".jpg"})


def encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def timed(fn: Callable[[], Any], repeats: int, warmup: int = 3) -> list[float]:
    return timed_cpu(fn, repeats, warmup)[0]


def timed_cpu(fn: Callable[[], Any], repeats: int, warmup: int = 3) -> tuple[list[float], list[float]]:
    """Wall-clock and process CPU milliseconds per call (CPU time is what a loaded host cannot inflate much)."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return wall, cpu


class Cycle:
    """Hands out the inputs in turn so that no single photo dominates a figure."""

    def __init__(self) -> None:
        self.i = 0

    def __call__(self, items: Sequence[Any]) -> Any:
        self.i = (self.i + 1) % len(items)
        return items[self.i]


def build_moderator(policy: str, options: dict[str, Any]) -> Any:
    from moderation.moderator import Moderator
    from moderation.policy import load_policy_text

    ref: Any = policy
    if options:
        opts = "{" + ", ".join(f"{k}: {v}" for k, v in options.items()) + "}"
        ref = load_policy_text(
            f"id: bench-{'-'.join(map(str, options.values()))}\nextends: {policy}\nimage:\n  classifiers:\n"
            f"    - {{name: nudenet, options: {opts}}}\n    - {{name: open_nsfw, options: {opts}}}\n"
        )
    moderator = Moderator.from_policy(ref)
    moderator.check_image(Image.new("RGB", (64, 64)))  # builds the image classifiers only
    return moderator


def stage_breakdown(inputs: dict[str, list[Any]], options: dict[str, Any], policy: Any, repeats: int) -> None:
    """Each step alone, one image at a time, to show where the time goes."""
    from classifiers.nudenet import NudeNetClassifier
    from classifiers.open_nsfw import OpenNSFWClassifier
    from moderation.engine import evaluate
    from moderation.images import load_image
    from moderation.types import Stage

    nxt = Cycle()
    nudenet, open_nsfw = NudeNetClassifier(**options), OpenNSFWClassifier(**options)
    print(f"# models: nudenet {nudenet.version}, open_nsfw {open_nsfw.version}")
    loaded = [load_image(j) for j in inputs["jpeg"]]
    results = [[nudenet.classify([li])[0], open_nsfw.classify([li])[0]] for li in loaded]
    rows = [
        ("decode JPEG q95 (load_image)", lambda: load_image(nxt(inputs["jpeg"]))),
        ("decode PNG (load_image)", lambda: load_image(nxt(inputs["png"]))),
        ("PIL input (convert + pixel hash)", lambda: load_image(nxt(inputs["pil"]))),
        ("nudenet (batch 1)", lambda: nudenet.classify([nxt(loaded)])),
        ("open_nsfw (batch 1)", lambda: open_nsfw.classify([nxt(loaded)])),
        ("engine (evaluate)", lambda: evaluate(policy, Stage.IMAGE, nxt(results))),
    ]
    print(f"{'step':44s} {'p50 ms':>8s} {'p90 ms':>8s} {'min ms':>8s} {'CPU ms':>8s}")
    total_cpu = 0.0
    for name, fn in rows:
        wall, cpu = timed_cpu(fn, repeats)
        p50, p90 = percentiles(wall)
        cpu50 = statistics.median(cpu)
        total_cpu += cpu50 if not name.startswith(("decode PNG", "PIL")) else 0.0
        print(f"{name:44s} {p50:8.2f} {p90:8.2f} {min(wall):8.2f} {cpu50:8.2f}")
    print(f"{'CPU work per JPEG image (decode + models + engine)':62s} {total_cpu:8.2f}")


def end_to_end(moderator: Any, inputs: dict[str, list[Any]], repeats: int, batch: int) -> None:
    """Moderator.check_image / check_images: decode + both classifiers (concurrently) + engine."""
    nxt = Cycle()
    print(f"\n{'Moderator.check_image, end to end':44s} {'p50 ms':>8s} {'p90 ms':>8s} {'min ms':>8s} {'CPU ms':>8s}")
    for name, key in (("JPEG bytes", "jpeg"), ("PNG bytes", "png"), ("PIL image (pipeline path)", "pil")):
        items = inputs[key]
        wall, cpu = timed_cpu(lambda items=items: moderator.check_image(nxt(items)), repeats)
        p50, p90 = percentiles(wall)
        print(f"{name:44s} {p50:8.2f} {p90:8.2f} {min(wall):8.2f} {statistics.median(cpu):8.2f}")
    print(f"\n{'Moderator.check_images, batched':44s} {'ms/img':>8s} {'img/s':>8s}")
    for name, key in (("JPEG bytes", "jpeg"), ("PIL image", "pil")):
        items = inputs[key]
        batches = [items[i : i + batch] for i in range(0, len(items) - batch + 1, batch)]
        samples = timed(lambda batches=batches: moderator.check_images(nxt(batches)), max(5, repeats // 4))
        per_image = statistics.median(samples) / batch
        print(f"{name + f' (batch {batch})':44s} {per_image:8.2f} {1000 / per_image:8.1f}")


def benign_scores(moderator: Any, paths: list[Path], options: dict[str, Any]) -> None:
    """The real models' highest scores on the benign photos at their own size (threshold headroom)."""
    from classifiers.nudenet import NudeNetClassifier
    from classifiers.open_nsfw import OpenNSFWClassifier
    from moderation.images import load_image

    originals = [load_image(p) for p in paths]
    nn = NudeNetClassifier(**options).classify(originals)
    on = OpenNSFWClassifier(**options).classify(originals)
    # Batches of 8: the policy's image timeout applies to a whole check_images call.
    decisions = [d for i in range(0, len(originals), 8) for d in moderator.check_images(originals[i : i + 8])]
    rules = {str(k): v.model_dump(exclude_none=True) for k, v in moderator.policy.image.categories.items()}
    print(f"\n# benign photos ({len(originals)}): highest scores; {moderator.policy.id} image thresholds {rules}")
    for key in ("sexual", "suggestive", "face"):
        score, img = max(zip((r.scores[key] for r in nn), originals, strict=True), key=lambda pair: pair[0])
        print(f"nudenet   {key:10s} max {score:.4f}  ({Path(img.source).name})")
    score, img = max(zip((r.scores["sexual"] for r in on), originals, strict=True), key=lambda pair: pair[0])
    print(f"open_nsfw {'sexual':10s} max {score:.4f}  ({Path(img.source).name})")
    actions: dict[str, int] = {}
    for d in decisions:
        actions[d.action.value] = actions.get(d.action.value, 0) + 1
    print(f"decisions under {moderator.policy.id}: {actions}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40, help="timed runs per measurement")
    parser.add_argument("--batch", type=int, default=8, help="batch size for the throughput figure")
    parser.add_argument("--policy", default="default")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="inference threads per model (default: the classifiers' default, 1)",
    )
    parser.add_argument(
        "--backend",
        choices=["auto", "openvino", "onnxruntime"],
        default=None,
        help="image models' runtime (default: the classifiers' default, auto = OpenVINO when installed)",
    )
    args = parser.parse_args()
    options: dict[str, Any] = {}
    if args.threads is not None:
        options["threads"] = args.threads
    if args.backend is not None:
        options["backend"] = args.backend

    paths = benign_paths()
    if not paths:
        sys.exit(f"no benign photos under {DATASETS}")
    photos = [Image.open(p).convert("RGB").resize((SIDE, SIDE), Image.Resampling.BICUBIC) for p in paths]
    inputs = {"pil": photos, "jpeg": [encode(p, "JPEG") for p in photos], "png": [encode(p, "PNG") for p in photos]}
    moderator = build_moderator(args.policy, options)
    print(
        f"# image stage, {SIDE}x{SIDE}, policy {moderator.policy.id}, threads/model {args.threads or 'default (1)'}, backend {args.backend or 'default (auto)'}, "
        f"{len(os.sched_getaffinity(0))} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    try:
        stage_breakdown(inputs, options, moderator.policy, args.repeats)
        end_to_end(moderator, inputs, args.repeats, args.batch)
        benign_scores(moderator, paths, options)
    finally:
        moderator.close()
    print(f"# load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
