"""What each training step bought: head variants scored on the held-out sets, cheaply.

    .venv/bin/python bench/prompt_ablation.py NAME=HEAD.npz [NAME=HEAD.npz ...]

Each head (written by `scripts/train_prompt_head.py --out DIR`) is applied to the *first token
window of the original prompt form only*, with embeddings cached on disk, so many variants can be
compared in seconds. This is a proxy: the shipped classifier also scores folded forms, later
windows and clause segments (bench/prompt_eval.py measures that). Nothing here trains or tunes.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from classifiers.embedding import PromptHead  # noqa: E402
from classifiers.minilm_encoder import MiniLMEncoder, export_key  # noqa: E402
from scripts import prompt_data  # noqa: E402
from scripts.train_prompt_head import embed_cached  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("heads", nargs="+", help="NAME=path/to/prompt_head.npz")
    args = ap.parse_args()
    from sklearn.metrics import average_precision_score

    rows = [r for r in prompt_data.load_training_rows() if r.split == "test"]
    benign = [r.text for r in rows if r.source in ("partiprompts", "drawbench", "coco")]
    openai = prompt_data.openai_moderation()
    xs = prompt_data.xstest()
    texts = [t for t, _ in openai] + [t for t, _ in xs] + benign
    encoder = MiniLMEncoder(backend="onnx")
    emb = embed_cached(encoder, texts, "base-" + export_key(None))
    n_o, n_x = len(openai), len(xs)
    y_o = np.asarray([y for _, y in openai])
    y_x = np.asarray([y for _, y in xs])
    print("| variant | OpenAI AUPRC | XSTest unsafe caught@0.5 | XSTest safe flagged@0.5 | benign T2I flagged@0.5 |")
    print("|---|---|---|---|---|")
    for spec in args.heads:
        name, _, path = spec.partition("=")
        head = PromptHead.load(Path(path))
        vectors = emb
        if head.delta_file:  # a fine-tuned top layer: embed with that encoder (not cached)
            from classifiers.embedding import EmbeddingClassifier

            vectors = EmbeddingClassifier(head_path=Path(path), backend="onnx").encoder.embed(texts)
        score = head.probabilities(vectors, head.word_logits(texts)).max(axis=1)
        s_o, s_x, s_b = score[:n_o], score[n_o : n_o + n_x], score[n_o + n_x :]
        print(
            f"| {name} | {average_precision_score(y_o, s_o):.3f} | {(s_x[y_x == 1] >= 0.5).mean():.3f} | "
            f"{(s_x[y_x == 0] >= 0.5).mean():.3f} | {(s_b >= 0.5).mean():.4f} |"
        )


if __name__ == "__main__":
    main()
