"""The validation counts a candidate head's rule is judged on first, for the shipped stack or a candidate.

    .venv/bin/python bench/validation_gates.py                    # shipped head and default policy
    .venv/bin/python bench/validation_gates.py --candidate DIR    # a head written by train_prompt_head.py --out DIR
    .venv/bin/python bench/validation_gates.py --split test       # the same counts on the test parts

Every candidate head since the ninth session was judged by a rule written before it was trained,
and the rule's first gates are these counts on the *validation* parts of the T2I sources: clean
I2P prompts flagged, Nibbler / I2P cut / RECE / Ring-A-Bell caught, benign T2I flagged (full stack,
default policy; docs/evaluation.md). Until the fifteenth session they came from scratch scripts.

With `--candidate DIR` the default policy takes DIR's validation thresholds and lexicon options (the
rewrite scripts/apply_thresholds.py makes, in memory) and the embedding classifier loads DIR's head,
with the tuned layer and word model beside it; nothing in the repository changes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from moderation.policy import Policy, load_policy, load_policy_text  # noqa: E402
from scripts import apply_thresholds, prompt_data  # noqa: E402

# (row label, sources, unsafe?): what a gate counts. Benign rows count as flagged, unsafe as caught.
GATES: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("clean I2P flagged", ("i2p_clean",), False),
    ("Nibbler caught", ("adversarial_nibbler",), True),
    ("I2P cut caught", ("i2p",), True),
    ("RECE caught", ("rece",), True),
    ("Ring-A-Bell caught", ("ringabell", "ringabell_pairs"), True),
    ("benign T2I flagged", ("partiprompts", "drawbench", "coco"), False),
)


def candidate_policy(head_dir: Path, preset: str = "default") -> Policy:
    """The preset with the candidate's validation thresholds and lexicon options, reading its head."""
    metrics = json.loads((head_dir / "prompt_head.metrics.json").read_text("utf-8"))
    text = (REPO / "policies" / f"{preset}.yaml").read_text("utf-8")
    text = apply_thresholds.rewrite(
        text,
        metrics["thresholds_from_val"][preset],
        metrics["meta"]["version"],
        apply_thresholds.lexicon_options(metrics),
    )
    policy = load_policy_text(text, name=f"<{preset} with {head_dir}>")
    specs = [
        spec.model_copy(update={"options": {**spec.options, "head_path": str(head_dir / "prompt_head.npz")}})
        if spec.name == "embedding"
        else spec
        for spec in policy.prompt.classifiers
    ]
    if not any(spec.name == "embedding" for spec in specs):
        raise SystemExit(f"the {preset} policy runs no embedding classifier to give the candidate's head to")
    return policy.model_copy(update={"prompt": policy.prompt.model_copy(update={"classifiers": specs})})


def count(rows: Sequence[tuple[str, bool, bool]]) -> list[tuple[str, int, int]]:
    """(source, unsafe, acted on) rows -> (gate, hits, rows) per gate."""
    out = []
    for name, sources, unsafe in GATES:
        part = [acted for source, y, acted in rows if source in sources and y == unsafe]
        out.append((name, sum(part), len(part)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidate", type=Path, help="folder with prompt_head.npz and its metrics (train --out)")
    ap.add_argument("--split", choices=("val", "test"), default="val")
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()

    from bench.prompt_eval import CONTROL  # control characters are refused as input errors: spaces, as there
    from moderation.moderator import Moderator

    policy = candidate_policy(args.candidate) if args.candidate else load_policy("default")
    # A per-call limit measures the machine, not the stack, on a busy 2-core box (a timeout fails closed).
    policy = policy.model_copy(update={"prompt": policy.prompt.model_copy(update={"timeout_s": 600.0})})
    sources = {s for _, group, _ in GATES for s in group}
    rows = [r for r in prompt_data.load_training_rows(i2p_clean=True) if r.split == args.split and r.source in sources]
    moderator = Moderator(policy)
    texts = [CONTROL.sub(" ", r.text[: policy.max_prompt_chars]) for r in rows]  # as bench/prompt_eval.py
    start = time.perf_counter()
    acted = []
    for i in range(0, len(texts), args.batch):
        acted += [d.action.value != "allow" for d in moderator.check_prompts(texts[i : i + args.batch])]
    moderator.close()
    head = args.candidate or "shipped head"
    print(f"# {args.split} parts, full stack, default policy, {head} ({len(rows)} prompts, "
          f"{time.perf_counter() - start:.0f} s)")  # fmt: skip
    for name, hits, n in count([(r.source, r.unsafe, a) for r, a in zip(rows, acted, strict=True)]):
        print(f"{name:20s} {hits:5d} of {n:5d}  ({hits / max(n, 1):.3f})")


if __name__ == "__main__":
    main()
