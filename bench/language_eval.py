"""The language classifier's floor: English prompts read as another language, and other-language prompts caught.

    .venv/bin/python bench/language_eval.py [--floors 0.8 0.85 0.9 0.95] [--show 20]

English sets (benign; every split, since the detectors are not trained here): PartiPrompts,
DrawBench and the COCO captions the training script draws, the clean-outcome I2P prompts, the
chit-chat turns, the everyday and safe look-alike T2I prompts in bench/data/, and XSTest.
Other-language prompts: bench/data/other_languages.jsonl (21 short prompts in 12 languages and 6
English descriptions ending in a clause in another language, "kind": "buried", written for this
check) and the T2I probe's 7 disguised-language prompts. A prompt counts at a
floor when the classifier's `other-language` score reaches it (moderation/engine.py applies
OTHER_LANGUAGE_FLOOR). Also prints the classifier's median time per prompt.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from scripts import prompt_data  # noqa: E402

OTHER_LANGUAGES = REPO / "bench" / "data" / "other_languages.jsonl"


def english_sets() -> dict[str, list[str]]:
    rows = prompt_data.load_training_rows(i2p_clean=True)
    sets = {
        name: [r.text for r in rows if r.source in sources and not r.unsafe]
        for name, sources in (
            ("Parti + DrawBench", ("partiprompts", "drawbench")),
            ("COCO", ("coco",)),
            ("clean I2P", ("i2p_clean",)),
            ("chat", ("chitchat",)),
        )
    }
    sets["everyday + look-alikes"] = [t for t, _ in prompt_data.t2i_common()] + [
        t for t, y in prompt_data.t2i_probe() if y == 0
    ]
    sets["XSTest"] = [t for t, _ in prompt_data.xstest()]
    return sets


def other_language_prompts() -> list[str]:
    written = [json.loads(line)["text"] for line in OTHER_LANGUAGES.read_text("utf-8").splitlines() if line.strip()]
    probe = [json.loads(line) for line in prompt_data.T2I_PROBE.read_text("utf-8").splitlines() if line.strip()]
    return written + [r["text"] for r in probe if r["kind"] == "disguised-language"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--floors", type=float, nargs="+", default=[0.8, 0.85, 0.9, 0.95])
    ap.add_argument("--show", type=int, default=20, help="English prompts to print that reach the engine's floor")
    args = ap.parse_args()

    from classifiers.language import LanguageClassifier
    from moderation.engine import OTHER_LANGUAGE_FLOOR
    from moderation.normalise import normalise

    clf = LanguageClassifier()
    sets = english_sets()
    sets["other languages"] = other_language_prompts()
    scores: dict[str, list[tuple[str, float]]] = {}
    times: list[float] = []
    for name, texts in sets.items():
        out = []
        for text in texts:
            started = time.perf_counter()
            (result,) = clf.classify([normalise(text)])
            times.append(time.perf_counter() - started)
            out.append((text, result.scores["other-language"]))
        scores[name] = out

    print("| floor | " + " | ".join(f"{name} ({len(v)})" for name, v in scores.items()) + " |")
    print("|---" * (len(scores) + 1) + "|")
    for floor in args.floors:
        counts = [sum(1 for _, p in v if p >= floor) for v in scores.values()]
        mark = "**" if floor == OTHER_LANGUAGE_FLOOR else ""
        print(f"| {mark}{floor:g}{mark} | " + " | ".join(str(c) for c in counts) + " |")
    print(f"\nEnglish prompts at or above the engine's floor ({OTHER_LANGUAGE_FLOOR:g}):")
    shown = [(n, t, p) for n, v in scores.items() if n != "other languages" for t, p in v if p >= OTHER_LANGUAGE_FLOOR]
    for name, text, p in shown[: args.show]:
        print(f"  {p:.3f}  {name}: {text[:100]!r}")
    missed = [(t, p) for t, p in scores["other languages"] if p < OTHER_LANGUAGE_FLOOR]
    print(f"\nOther-language prompts under the floor: {len(missed)}")
    for text, p in missed:
        print(f"  {p:.3f}  {text!r}")
    print(
        f"\nlanguage classifier: median {statistics.median(times) * 1000:.3f} ms per prompt over {len(times)} prompts"
    )


if __name__ == "__main__":
    main()
