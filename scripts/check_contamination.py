"""Near-duplicates between the hand-written training files and the evaluation-only sets.

    .venv/bin/python scripts/check_contamination.py          # report
    .venv/bin/python scripts/check_contamination.py --drop   # rewrite the written files without them

The written files were composed without reading the OpenAI moderation set, XSTest or HarmBench,
but a writer who has seen those public benchmarks can echo one. Any written line whose MiniLM
embedding has cosine >= --max-cosine with an evaluation text (or the same letters and digits) is
reported, and with --drop removed, so those sets stay a held-out measure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from classifiers.minilm_encoder import MiniLMEncoder
from scripts import prompt_data

EVAL_CHARS = 2000  # the encoder sees the first window anyway


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-cosine", type=float, default=0.8)
    ap.add_argument("--drop", action="store_true", help="rewrite the written files without flagged lines")
    ap.add_argument("--files", nargs="*", type=Path, help="only these written files (default: all of them)")
    args = ap.parse_args()

    evals = [("openai", t) for t, _ in prompt_data.openai_moderation()]
    evals += [("xstest", t) for t, _ in prompt_data.xstest()] + [("harmbench", t) for t, _ in prompt_data.harmbench()]
    evals += [("t2i_probe", t) for t, _ in prompt_data.t2i_probe()] + [
        ("t2i_common", t) for t, _ in prompt_data.t2i_common()
    ]
    for path in prompt_data.LATER_PROBES:
        evals += [(path.stem, t) for t, _ in prompt_data.read_probe(path)]
    for path in prompt_data.EVAL_ONLY_FILES:  # bench/data/*.jsonl read by the language and minors benches
        evals += [
            (path.stem, json.loads(line)["text"]) for line in path.read_text("utf-8").splitlines() if line.strip()
        ]
    eval_keys = {prompt_data.key_of(t) for _, t in evals}
    encoder = MiniLMEncoder(backend="onnx")
    eval_emb = encoder.embed([t[:EVAL_CHARS] for _, t in evals])
    total = 0
    for path in args.files or prompt_data.WRITTEN_FILES:
        lines = path.read_text(encoding="utf-8").splitlines()
        texts = [json.loads(line)["text"] for line in lines]
        sim = encoder.embed(texts) @ eval_emb.T
        nearest, best = sim.argmax(1), sim.max(1)
        bad = {i for i, t in enumerate(texts) if best[i] >= args.max_cosine or prompt_data.key_of(t) in eval_keys}
        for i in sorted(bad):
            name, other = evals[nearest[i]]
            print(f"{path.name}:{i + 1}: cosine {best[i]:.3f} with {name}: {texts[i][:70]!r} ~ {other[:70]!r}")
        print(f"# {path.name}: {len(texts)} lines, {len(bad)} at cosine >= {args.max_cosine}; "
              f"median nearest {float(np.median(best)):.3f}")  # fmt: skip
        total += len(bad)
        if args.drop and bad:
            path.write_text("".join(line + "\n" for i, line in enumerate(lines) if i not in bad), encoding="utf-8")
    sys.exit(1 if total and not args.drop else 0)


if __name__ == "__main__":
    main()
