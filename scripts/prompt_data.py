"""Training and evaluation prompts for the embedding head: one mapping table, one seeded split.

Each source's own labels are mapped to fluxwarden categories by `MAPPING` below (documented in
docs/model_card.md). A row's `labels` holds 1/0 for the categories its source speaks about; a
category a source says nothing about is *unknown* for that row and masked out of training, so a
hate-speech set never teaches "this tweet is not sexual".

The split is a hash of the de-duplicated text under a fixed seed: identical texts from two sources
land in the same part, and adding rows never moves existing ones between parts.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moderation.taxonomy import PARENT, Category

SEED = 1337
SPLITS = {"train": 0.70, "val": 0.15, "test": 0.15}
# Categories the head is trained for. sexual/minors is derived by the engine (minors x sexual);
# public-figure and living-artist-style are the names classifier's.
HEAD_CATEGORIES: tuple[str, ...] = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "violence", "violence/graphic",
)  # fmt: skip
EVAL_ONLY = ("openai_moderation", "xstest", "harmbench_standard")
COCO_ROWS = 9000  # a seeded subset of the 30k captions keeps the benign class from drowning the rest
CHAT_ROWS = 9000  # likewise for the chit-chat turns (258k messages)
CHAT_MIN_WORDS = 4

_REPO = Path(__file__).resolve().parents[1]
WRITTEN = _REPO / "scripts" / "data" / "written_prompts.jsonl"
# Hand-written general texts (chat, posts, stories, requests), not T2I prompts: see docs/model_card.md.
WRITTEN_TEXTS = _REPO / "scripts" / "data" / "written_texts.jsonl"
WRITTEN_CONTRAST = _REPO / "scripts" / "data" / "written_contrast.jsonl"
# News, fiction, personal posts and online discussion on sensitive topics: benign framings beside
# unsafe ones in the same genres (fifth session). Opt-in (`written_general=True`): the head trained
# with it was measured and not shipped (docs/evaluation.md), so the default rows stay the shipped head's.
WRITTEN_GENERAL = _REPO / "scripts" / "data" / "written_general.jsonl"
# T2I prompts with the vocabulary of unsafe ones (art nudes, battles, butchery, idioms) beside unsafe
# prompts in the same domains, written in the seventh session (scripts/data/WRITING_BRIEF.md).
WRITTEN_T2I = _REPO / "scripts" / "data" / "written_t2i.jsonl"
# Implicit unsafe T2I prompts (harm implied by the situation, not named by an alarming word) and
# benign neighbours, written in the fifteenth session. Opt-in (`written_t2i_implicit=True`, read as
# more `written_t2i` rows): the head trained with it was measured and not shipped (docs/evaluation.md).
WRITTEN_T2I_IMPLICIT = _REPO / "scripts" / "data" / "written_t2i_implicit.jsonl"
WRITTEN_FILES = (WRITTEN, WRITTEN_TEXTS, WRITTEN_CONTRAST, WRITTEN_GENERAL, WRITTEN_T2I, WRITTEN_T2I_IMPLICIT)
# Evaluation only, never trained on: 425 T2I prompts a separate writing session composed for this
# project without seeing any training data (docs/evaluation.md, "T2I probe"). Benign ones carry
# the vocabulary naive filters trip on; unsafe ones include disguised forms.
T2I_PROBE = _REPO / "bench" / "data" / "t2i_probe.jsonl"
# Evaluation only, never trained on: 329 everyday T2I prompts (a third of them portraits and fashion
# of adults, as in real use), written by another separate session; all benign.
T2I_COMMON = _REPO / "bench" / "data" / "t2i_common.jsonl"
# Evaluation only, never trained on: 292 T2I prompts a separate session wrote in the twelfth session
# without seeing any code or data (320, less 28 within cosine 0.8 of a training line). Read: list
# terms were added against its misses, so its recall overstates what unseen prompts get.
T2I_PROBE2 = _REPO / "bench" / "data" / "t2i_probe2.jsonl"
# Evaluation only, never trained on, and unread: T2I prompts a separate session wrote blind in the
# thirteenth session (330, less those within cosine 0.8 of a training line or an earlier probe).
# Only its aggregate figures have been looked at, so it can still judge a change fairly: keep it so
# (no list terms or training rows written against its misses).
T2I_PROBE3 = _REPO / "bench" / "data" / "t2i_probe3.jsonl"
# Evaluation only, never trained on: T2I prompts a separate session wrote blind in the fifteenth
# session (half of the unsafe ones implicit or disguised), less those within cosine 0.8 of a training
# line or an earlier probe. Its first use was the gate of candidate F (docs/evaluation.md).
T2I_PROBE4 = _REPO / "bench" / "data" / "t2i_probe4.jsonl"
# Evaluation only, never trained on, and unread (not even in aggregate): written blind by another
# helper in the fifteenth session for the next change's gate (300, less 49 within cosine 0.8 of a
# training line, the implicit file included, or an earlier probe). Not in bench/prompt_eval.py yet:
# whoever next proposes a head adds it there after writing that head's rule.
T2I_PROBE5 = _REPO / "bench" / "data" / "t2i_probe5.jsonl"
# The probes after the first (whose halves have their own loader), for checks that must cover each.
LATER_PROBES = (T2I_PROBE2, T2I_PROBE3, T2I_PROBE4, T2I_PROBE5)
# Evaluation only, written in the eighth session for bench/language_eval.py and bench/adult_reading.py.
EVAL_ONLY_FILES = (
    _REPO / "bench" / "data" / "other_languages.jsonl",
    _REPO / "bench" / "data" / "minors_requests.jsonl",
)


def datasets_dir() -> Path:
    return Path(os.environ.get("FLUXWARDEN_DATASETS", _REPO.parent / "shared" / "datasets"))


@dataclass(slots=True)
class Row:
    text: str
    source: str
    labels: dict[str, int] = field(default_factory=dict)
    split: str = "train"

    @property
    def unsafe(self) -> bool:
        return any(self.labels.values())


def key_of(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def split_of(text: str) -> str:
    digest = hashlib.sha256(f"{SEED}:{key_of(text)}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < SPLITS["train"]:
        return "train"
    return "val" if u < SPLITS["train"] + SPLITS["val"] else "test"


def _read(rel: str) -> Iterator[dict[str, Any]]:
    path = datasets_dir() / rel
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _labels(positive: list[str], negative: list[str] | tuple[str, ...] = ()) -> dict[str, int]:
    """1 for `positive` (and their parents), 0 for `negative`; everything else unknown."""
    out = dict.fromkeys(negative, 0)
    for name in positive:
        out[name] = 1
        parent = PARENT.get(Category(name))
        if parent is not None:
            out[parent.value] = 1
    return out


ALL_ZERO: tuple[str, ...] = HEAD_CATEGORIES

# --- the mapping table: source label -> categories (docs/model_card.md reproduces it) -----------
I2P_CATEGORY = {
    "sexual": ["sexual"], "violence": ["violence"], "self-harm": ["self-harm"], "hate": ["hate"],
    "harassment": ["harassment"], "illegal activity": ["illicit"], "shocking": ["violence/graphic"],
}  # fmt: skip
RECE_CLASS = {
    "Hate": ["hate"], "Harassment": ["harassment"], "Violence": ["violence"], "Suffering": ["violence"],
    "Humiliation": ["harassment"], "Harm": ["violence"], "Suicide": ["self-harm"], "Sexual": ["sexual"],
    "Nudity": ["sexual"], "Bodily fluids": ["violence/graphic"], "Blood": ["violence/graphic"],
}  # fmt: skip
NIBBLER_FAILURE = {"image_failure_sexual": ["sexual"], "image_failure_violent": ["violence"],
                   "image_failure_hate": ["hate"]}  # fmt: skip
SST_AREA = {
    "Suicide, Self-Harm, and Eating Disorders": ["self-harm"], "Physical harm and Violence": ["violence"],
    "Illegal and Highly Regulated items": ["illicit"], "Scams and fraud": ["illicit"],
}  # fmt: skip
CATQA = {
    "Adult Content": ["sexual"], "Child Abuse": ["violence"], "Economic Harm": ["illicit"],
    "Fraud/Deception": ["illicit"], "Illegal Activity": ["illicit"], "Malware Viruses": ["illicit"],
    "Privacy Violation Activity": ["illicit"], "Hate/Harass/Violence": ["harassment"],
    "Physical Harm": ["violence"],
    # Requests that are not harmful under the taxonomy: kept as negatives.
    "Political Campaigning": [], "Tailored Financial Advice": [],
}  # fmt: skip
CATQA_SUB = {
    "Cyberbullying": ["harassment"], "Gender-based violence": ["hate", "violence"],
    "Racial or ethnic hate": ["hate"], "Religious intolerance": ["hate"],
    "Terrorism and extremism": ["illicit/violent", "violence"], "Weapon:": ["illicit/violent"],
    "Assault and battery": ["violence"], "Hazardous material handling": ["illicit"],
    "Self-harm": ["self-harm", "self-harm/instructions"], "Unsafe practices": ["self-harm"],
    "Weapon making": ["illicit/violent"], "Adult-themed humor": [],
}  # fmt: skip


def _i2p() -> Iterator[Row]:
    """Prompt-level cut: I2P labels describe generated images, so only rows whose *text* is likely
    unsafe count: nudity >= 50% of images (sexual), or inappropriate >= 50% with prompt toxicity
    >= 0.5 (the retrieval category). The rest of I2P is left out (`_i2p_clean`: opt-in negatives)."""
    for r in _read("i2p/i2p.jsonl.gz"):
        lab = r["labels"]
        if lab["nudity_percentage"] >= 50:
            yield Row(r["text"], "i2p", _labels(["sexual"]))
        elif lab["inappropriate_percentage"] >= 50 and (lab.get("prompt_toxicity") or 0) >= 0.5:
            cats = [c for k in lab["categories"] for c in I2P_CATEGORY.get(k, [])]
            if cats:
                yield Row(r["text"], "i2p", _labels(cats))


# I2P prompts whose generated images came out clean: at most 1 of SD-1.4's 10 images judged
# inappropriate, none with nudity, and a non-toxic text. Real user prompts (lexica) in the tag-list
# style the public benign sets lack. Opt-in negatives (`i2p_clean=True`; measured in the seventh
# session, not in the shipped head: docs/evaluation.md); their test part is an evaluation set.
I2P_CLEAN_MAX_INAPPROPRIATE = 10.0
I2P_CLEAN_MAX_TOXICITY = 0.2


def _i2p_clean() -> Iterator[Row]:
    """A prompt that I2P lists twice, once in the positive cut, is never a negative too."""
    positives = {key_of(row.text) for row in _i2p()}
    for r in _read("i2p/i2p.jsonl.gz"):
        lab = r["labels"]
        if (
            lab["inappropriate_percentage"] <= I2P_CLEAN_MAX_INAPPROPRIATE
            and lab["nudity_percentage"] == 0
            and (lab.get("prompt_toxicity") or 0) < I2P_CLEAN_MAX_TOXICITY
            and key_of(r["text"]) not in positives
        ):
            yield Row(r["text"], "i2p_clean", _labels([], ALL_ZERO))


def _nibbler() -> Iterator[Row]:
    """Validator strict majority says the *text* is unsafe; categories from the submitter's image failure."""
    for r in _read("adversarial_nibbler/adversarial_nibbler_submitted.jsonl.gz"):
        validation = r["labels"].get("validation")
        if not validation:
            continue
        votes = [v.get("text_safety_validation") or [] for v in validation]
        if sum("text_unsafe" in v for v in votes) * 2 <= len(votes):
            continue
        failure = (r["labels"].get("submission_annotations") or {}).get("image_failure_type") or []
        cats = [c for f in failure if isinstance(f, str) for c in NIBBLER_FAILURE.get(f, [])]
        if cats:
            yield Row(r["text"], "adversarial_nibbler", _labels(cats))


def _rece() -> Iterator[Row]:
    for r in _read("rece_validation_inappropriate/rece_validation_inappropriate.jsonl"):
        yield Row(r["text"], "rece", _labels(RECE_CLASS[r["labels"]["class"]]))


def _ringabell() -> Iterator[Row]:
    for r in _read("ringabell_violence/ringabell_violence_invprompts.jsonl"):
        yield Row(r["text"], "ringabell", _labels(["violence"]))
    for r in _read("ringabell_violence/ringabell_violence_concept_pairs.jsonl"):
        violent = r["labels"].get("contains_concept") == "violence"
        yield Row(r["text"], "ringabell_pairs", _labels(["violence"]) if violent else _labels([], ALL_ZERO))


def _benign() -> Iterator[Row]:
    for name, rel in (("partiprompts", "partiprompts/partiprompts.jsonl"), ("drawbench", "drawbench/drawbench.jsonl")):
        for r in _read(rel):
            yield Row(r["text"], name, _labels([], ALL_ZERO))
    coco = sorted(_read("coco30k_captions/coco30k_captions.jsonl.gz"), key=lambda r: split_of("coco" + r["text"]))
    for r in coco[:COCO_ROWS]:
        yield Row(r["text"], "coco", _labels([], ALL_ZERO))


# What Davidson's "offensive language" class (77% of its tweets) teaches: "harassment" (every
# shipped head), or nothing beyond "not hate" ("unlabelled"): the class marks profanity whether or
# not it targets anyone, and the taxonomy's harassment is language aimed at a target.
DAVIDSON_OFFENSIVE = ("harassment", "unlabelled")


def _general(davidson_offensive: str = "harassment") -> Iterator[Row]:
    """General moderation sets (not T2I): broad data for what a frozen encoder cannot learn from T2I alone."""
    if davidson_offensive not in DAVIDSON_OFFENSIVE:
        raise ValueError(f"davidson_offensive must be one of {DAVIDSON_OFFENSIVE}, not {davidson_offensive!r}")
    offensive = _labels(["harassment"] if davidson_offensive == "harassment" else [], ("hate",))
    for r in _read("davidson_hate_offensive/davidson_labeled_data.jsonl.gz"):
        cls = r["labels"]["class"]
        labels = {0: _labels(["hate", "harassment"]), 1: dict(offensive)}.get(cls, _labels([], ALL_ZERO))
        yield Row(r["text"], "davidson", labels)
    for r in _read("ethos/ethos_binary.jsonl"):
        hate = r["labels"]["isHate"] >= 0.5
        yield Row(r["text"], "ethos", _labels(["hate"]) if hate else _labels([], ("hate", "hate/threatening")))
    for r in _read("ethos/ethos_multi_label.jsonl"):
        if r["labels"]["violence"] >= 0.5:
            yield Row(r["text"], "ethos", _labels(["hate/threatening"]))
    for r in _read("hatecheck/hatecheck_test_suite.jsonl.gz"):
        lab = r["labels"]
        if lab["label_gold"] == "hateful":
            threat = lab["functionality"].startswith("threat")
            yield Row(r["text"], "hatecheck", _labels(["hate/threatening"] if threat else ["hate"]))
        else:
            yield Row(r["text"], "hatecheck", _labels([], ("hate", "hate/threatening")))
    for r in _read("stormfront_hate/stormfront_sentences.jsonl.gz"):
        label = r["labels"]["label"]
        if label == "hate":
            yield Row(r["text"], "stormfront", _labels(["hate"]))
        elif label == "noHate":
            yield Row(r["text"], "stormfront", _labels([], ALL_ZERO))
    for r in _read("toxigen_seeds/toxigen_seed_statements.jsonl"):
        hate = r["labels"]["prompt_label"] == "hate"
        yield Row(r["text"], "toxigen", _labels(["hate"]) if hate else _labels([], ALL_ZERO))
    for r in _read("simplesafetytests/simplesafetytests.jsonl"):
        yield Row(r["text"], "simplesafetytests", _labels(SST_AREA[r["labels"]["harm_area"]]))
    for r in _read("catqa/catqa_english.jsonl"):
        sub = r["labels"]["subcategory"]
        cats = CATQA_SUB.get(sub, CATQA[r["labels"]["category"]])
        yield Row(r["text"], "catqa", _labels(cats, ALL_ZERO if not cats else ()))
    for r in _read("advbench/advbench_harmful_behaviors.jsonl"):
        yield Row(r["text"], "advbench", _labels(["illicit"]))
    # r/SuicideWatch posts only: r/depression posts are about sadness, not self-harm, and taught the
    # head that any first-person account of feeling low is self-harm.
    for r in _read("sdcnl_suicide_depression/sdcnl.jsonl.gz"):
        if r["labels"].get("is_suicide") == 1:
            yield Row(r["text"], "sdcnl", _labels(["self-harm/intent"]))


def _chat() -> Iterator[Row]:
    """Benign open-domain chat (PyPI `chitchat-dataset`, MIT: BYU students chatting, unlabelled and
    presumed benign). The other negatives are T2I prompts, captions and tweets, and the head scored
    ordinary conversational text as harmful; one sender's consecutive messages form one turn."""
    from importlib import resources

    try:
        root = resources.files("chitchat_dataset")
    except ModuleNotFoundError:
        raise SystemExit("training data needs the chitchat-dataset package: pip install -e '.[train]'") from None
    conversations = json.loads(root.joinpath("dataset.json").read_text(encoding="utf-8"))
    turns = {
        text
        for conv in conversations.values()
        for turn in conv["messages"]
        if len((text := " ".join(m["text"].strip() for m in turn)).split()) >= CHAT_MIN_WORDS
    }
    # Ordered by (hash bucket, text): `turns` is a set, whose order changes with PYTHONHASHSEED, so
    # ordering by the bucket alone drew a different 9,000 turns in every process.
    for text in sorted(turns, key=lambda t: (split_of("chat" + t), t))[:CHAT_ROWS]:
        yield Row(text, "chitchat", _labels([], ALL_ZERO))


def _written(general_genres: bool = False, t2i_implicit: bool = False) -> Iterator[Row]:
    sources = [
        (WRITTEN, "written"),
        (WRITTEN_TEXTS, "written_texts"),
        (WRITTEN_CONTRAST, "written_contrast"),
        (WRITTEN_T2I, "written_t2i"),
    ]
    if t2i_implicit:  # the same source, as if appended to written_t2i.jsonl (how candidate F was trained)
        sources.append((WRITTEN_T2I_IMPLICIT, "written_t2i"))
    if general_genres:
        sources.append((WRITTEN_GENERAL, "written_general"))
    for path, source in sources:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                r = json.loads(line)
                cats = r["categories"]
                yield Row(r["text"], source, _labels(cats) if cats else _labels([], ALL_ZERO))


STYLE_TAGS = _REPO / "scripts" / "data" / "style_tags.json"
TAGGED_BENIGN = 6000  # benign subjects drawn for tagging (of ~11k); every short unsafe T2I subject is tagged
TAGGED_MAX_WORDS = 30
TAGGED_UNSAFE_FROM = ("written", "written_t2i", "rece", "adversarial_nibbler")
TAGGED_BENIGN_FROM = ("partiprompts", "drawbench", "coco", "written", "written_t2i")
# Derived rows take their subject's split, so no test subject reaches training in tagged form.
DERIVED_SOURCES = ("tagged_benign", "tagged_unsafe")


def style_suffix(rng: random.Random, tags: dict[str, list[str]]) -> list[str]:
    """Tags as real prompts carry them: frequent flavours most often, artists, a site, a medium."""
    flavours = tags["flavours"]
    parts = [flavours[int(len(flavours) * rng.random() ** 3)] for _ in range(rng.randint(1, 7))]
    if rng.random() < 0.15:
        parts.append(rng.choice(tags["movements"]))
    if rng.random() < 0.35:
        site = rng.choice(tags["sites"])
        parts.append(rng.choice((f"trending on {site}", f"featured on {site}", site)))
    rng.shuffle(parts)
    if rng.random() < 0.5:
        names = [rng.choice(tags["artists"]) for _ in range(rng.randint(1, 3))]
        names = [n.lower() if rng.random() < 0.5 else n for n in names]
        parts.append("by " + rng.choice((" and ", ", ")).join(names))
    return parts


def tag_prompt(subject: str, rng: random.Random, tags: dict[str, list[str]]) -> str:
    subject = subject.strip().rstrip(".")
    if rng.random() < 0.5:
        subject = subject[:1].lower() + subject[1:]
    parts = style_suffix(rng, tags)
    form = rng.random()
    if form < 0.2:
        return f"{rng.choice(tags['mediums'])} of {subject}, " + ", ".join(parts)
    if form < 0.3:
        return ", ".join([*parts[:2], subject, *parts[2:]])
    return ", ".join([subject, *parts])


# Real prompts are mostly portraits and characters, while the benign captions are mostly scenes and
# objects: benign people subjects, written by this grammar, carry the tags too. Adults only, clothed,
# no pose or body words (the head should learn that a tagged portrait is not sexual by itself).
PERSON_FRAMES = (
    "portrait of", "a photo of", "studio photo of", "close-up portrait of", "full body portrait of",
    "character art of", "an oil painting of", "headshot of", "candid photo of", "a sketch of",
    "concept art of", "a statue of", "",
)  # fmt: skip
PERSON_ADJECTIVES = (
    "beautiful", "handsome", "elderly", "middle-aged", "smiling", "serious", "tired", "confident",
    "freckled", "bearded", "pensive", "cheerful", "stern", "gentle", "tall", "", "", "",
)  # fmt: skip
PERSON_ORIGINS = (
    "japanese", "nigerian", "brazilian", "norwegian", "indian", "mexican", "korean", "irish", "ethiopian",
    "french", "peruvian", "mongolian", "egyptian", "scottish", "vietnamese", "", "", "",
)  # fmt: skip
PERSON_NOUNS = (
    "woman", "man", "old woman", "old man", "female astronaut", "male astronaut", "elf", "wizard", "sorceress",
    "nurse", "chef", "firefighter", "farmer", "ballerina", "fashion model", "businesswoman", "scientist",
    "pilot", "queen", "king", "viking", "pirate captain", "cyborg", "android", "librarian", "fisherman",
    "violinist", "gardener", "professor", "blacksmith", "monk", "shepherd", "dancer", "photographer",
)  # fmt: skip
PERSON_DETAILS = (
    "with long red hair", "with short grey hair", "with braided hair", "with curly black hair", "with glasses",
    "wearing a wool sweater", "wearing a business suit", "wearing a red dress", "wearing a leather jacket",
    "wearing a kimono", "wearing a trench coat", "wearing a lab coat", "in ornate armor", "wearing a summer dress",
    "wearing a hoodie", "wearing a sari", "in a tuxedo", "in a yellow raincoat", "in a wedding dress",
    "holding a lantern", "holding a cup of coffee", "holding a book", "reading a map", "looking at the camera",
    "in a sunflower field", "in a busy market", "on a rainy street", "in a library", "by the sea",
    "in a snowy forest", "in a neon-lit city", "in a cozy kitchen", "at golden hour", "on a mountain top",
)  # fmt: skip
TAGGED_PEOPLE = 2000


def person_subject(rng: random.Random) -> str:
    words = [rng.choice(PERSON_ADJECTIVES), rng.choice(PERSON_ORIGINS), rng.choice(PERSON_NOUNS)]
    person = " ".join(w for w in words if w)
    person = ("an " if person[0] in "aeio" else "a ") + person
    details = rng.sample(PERSON_DETAILS, rng.randint(0, 2))
    frame = rng.choice(PERSON_FRAMES)
    return " ".join(part for part in (frame, person, *details) if part)


def _tagged(unsafe_copies: int = 1, t2i_implicit: bool = False) -> Iterator[Row]:
    """Benign and unsafe T2I subjects with the same style tags, so tags stop reading as unsafe.

    The unsafe T2I sets are tag-style and the benign ones plain sentences; without this the head
    refused half of the real prompts whose images came out clean (docs/evaluation.md, ninth session).
    `unsafe_copies` tags each unsafe subject that many times (independent draws), to weigh tag-style
    unsafe rows against the tagged benign people.
    """
    tags = json.loads(STYLE_TAGS.read_text(encoding="utf-8"))
    rng = random.Random(SEED)
    sources = [*T2I_SOURCES, functools.partial(_written, False, t2i_implicit)]
    benign: dict[str, Row] = {}
    unsafe: dict[str, Row] = {}
    for loader in sources:
        for row in loader():
            if len(row.text.split()) > TAGGED_MAX_WORDS:
                continue
            if row.unsafe and row.source in TAGGED_UNSAFE_FROM:
                unsafe.setdefault(key_of(row.text), row)
            elif not row.unsafe and row.source in TAGGED_BENIGN_FROM and row.labels:
                benign.setdefault(key_of(row.text), row)
    picked = sorted(benign.values(), key=lambda r: split_of("tag" + r.text))[:TAGGED_BENIGN]
    people = {person_subject(rng) for _ in range(TAGGED_PEOPLE)}
    picked += [Row(text, "person_subject", _labels([], ALL_ZERO)) for text in sorted(people)]
    for source, group, copies in (
        ("tagged_benign", picked, 1),
        ("tagged_unsafe", sorted(unsafe.values(), key=lambda r: r.text), unsafe_copies),
    ):
        for row in group:
            for _ in range(copies):
                yield Row(tag_prompt(row.text, rng, tags), source, dict(row.labels), split_of(row.text))


T2I_SOURCES = (_i2p, _nibbler, _rece, _ringabell, _benign)
CHAT_SOURCES = (_chat,)


def load_training_rows(
    *,
    general: bool = True,
    written: bool = True,
    chat: bool = True,
    davidson_offensive: str = "harassment",
    written_general: bool = False,
    written_t2i_implicit: bool = False,
    i2p_clean: bool = False,
    tagged: bool = False,
    tagged_unsafe_copies: int = 1,
) -> list[Row]:
    """All trainable rows, de-duplicated within each source, each tagged with its split."""
    loaders = (
        list(T2I_SOURCES)
        + ([_i2p_clean] if i2p_clean else [])
        + ([functools.partial(_general, davidson_offensive)] if general else [])
        + ([functools.partial(_written, written_general, written_t2i_implicit)] if written else [])
        + (list(CHAT_SOURCES) if chat else [])
        + ([functools.partial(_tagged, tagged_unsafe_copies, written_t2i_implicit)] if tagged else [])
    )
    merged: dict[tuple[str, str], Row] = {}
    for loader in loaders:
        for row in loader():
            text = row.text.strip()
            if not text:
                continue
            key = (row.source, key_of(text))
            if key in merged:  # the same text twice in one source: union of what is known
                old = merged[key].labels
                for cat, val in row.labels.items():
                    old[cat] = max(old.get(cat, 0), val)
                continue
            split = row.split if row.source in DERIVED_SOURCES else split_of(text)
            merged[key] = Row(text, row.source, dict(row.labels), split)
    return list(merged.values())


# --- evaluation-only sets (never trained on, never used to pick thresholds) -------------------
OPENAI_CODES = {"S": "sexual", "H": "hate", "V": "violence", "HR": "harassment", "SH": "self-harm",
                "S3": "sexual/minors", "H2": "hate/threatening", "V2": "violence/graphic"}  # fmt: skip


def openai_moderation() -> list[tuple[str, int]]:
    """(text, any-category) pairs; a missing key is unknown, so 'any' is 1 if any known key is 1."""
    return [
        (r["text"], int(any(v == 1 for v in r["labels"].values())))
        for r in _read("openai_moderation/openai_moderation_1680.jsonl")
    ]


def xstest() -> list[tuple[str, int]]:
    return [(r["text"], int(r["labels"]["label"] == "unsafe")) for r in _read("xstest/xstest.jsonl")]


def harmbench() -> list[tuple[str, int]]:
    return [(r["text"], 1) for r in _read("harmbench_standard/harmbench_standard.jsonl")]


def t2i_probe(half: str | None = None) -> list[tuple[str, int]]:
    """(text, unsafe) pairs; `half` "dev" or "held" picks the half that was or was not looked at."""
    rows = [json.loads(line) for line in T2I_PROBE.read_text("utf-8").splitlines() if line.strip()]
    return [(r["text"], int(r["label"] == "unsafe")) for r in rows if half is None or r["half"] == half]


def read_probe(path: Path) -> list[tuple[str, int]]:
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    return [(r["text"], int(r["label"] == "unsafe")) for r in rows]


def t2i_probe2() -> list[tuple[str, int]]:
    return read_probe(T2I_PROBE2)


def t2i_probe3() -> list[tuple[str, int]]:
    return read_probe(T2I_PROBE3)


def t2i_probe4() -> list[tuple[str, int]]:
    return read_probe(T2I_PROBE4)


def t2i_probe5() -> list[tuple[str, int]]:
    return read_probe(T2I_PROBE5)


def t2i_common() -> list[tuple[str, int]]:
    return [(json.loads(line)["text"], 0) for line in T2I_COMMON.read_text("utf-8").splitlines() if line.strip()]


def sneakyprompt_words() -> list[str]:
    return [r["text"] for r in _read("sneakyprompt_nsfw_wordlist/nsfw_wordlist.jsonl")]
