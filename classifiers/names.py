"""Names classifier: real living people (public figures) and living artists' names as style cues.

Names are matched on the folded prompt, token by token, so homoglyphs and leetspeak are already
undone; a misspelt token still meets a name token one edit away ("Swfit", "Musc"). Candidates come
from an exact index plus a deletion index (every name token with one letter dropped), so a prompt
costs a few dictionary look-ups per word; rapidfuzz confirms each candidate. To stay clear of
ordinary words, one-word names match fuzzily only when long, and a multi-word name needs one exact
word unless all its words are long.

Scores depend on what the prompt asks for: "a photo of X", "X riding a horse" ask for a depiction
of a real person (high); "a book about X's policies" only mentions them (low). A living artist's
name next to "in the style of", "by", "art by" asks for their style (high); a bare mention is
moderate. Dead artists are matched too, only to take away overlapping hits.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from moderation.lists import Term, WordLists, load_lists
from moderation.normalise import NormalisedText, fold
from moderation.taxonomy import Category
from moderation.types import ClassifierResult, Evidence, Span, Stage

VERSION = "2"  # 2: the folded form reads upside-down and backwards text, small capitals


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_TOKEN = re.compile(r"[^\W_]+")
_APOSTROPHES = frozenset("'’`´")
_KINDS = ("dead", "living", "public")  # overlap priority on ties: a dead artist takes the span
_LIST_KIND = {"dead-artists": "dead", "living-artists": "living", "public-figures": "public"}

SHORT_EXACT = 3  # name tokens this short must match exactly ("Jay", "Kim")
SINGLE_FUZZY_MIN = 8  # a one-word name matches with one edit only if at least this long
SINGLE_DELETION_MIN = 9  # ... and a dropped letter only if at least this long ("ronald" is not "Ronaldo")
ALL_FUZZY_MIN = 5  # every word of a multi-word name this long: no exact word needed
JOINED_MIN = 8  # "TaylorSwift" is also a key (exact only) when the joined name is at least this long
MIN_RATIO = 80.0  # rapidfuzz ratio of the whole candidate against the name

DEPICTION = 0.9
NEUTRAL = 0.6
MENTION = 0.3
STYLE = 0.9
LISTED_ARTIST = 0.8  # a name in a comma-separated list of prompt modifiers
BARE_ARTIST = 0.5

# Words before a name that ask for a picture of the person.
_DEPICT_BEFORE = _words(
    "photo photos photograph photographs photography photorealistic realistic picture pictures pic pics image"
    " images portrait portraits painting paintings drawing drawings sketch sketches render rendering"
    " illustration caricature caricatures selfie selfies statue statues sculpture sculptures cartoon"
    " figurine bust headshot closeup close-up depiction depicting depicts featuring starring showing shows"
    " meme memes deepfake deepfakes cosplay cosplaying lookalike likeness poster photoshoot snapshot"
    " footage video still mugshot nude naked sexy hot young old"
)
# Words right after a name (or its possessive) that make the person the subject of the picture.
_DEPICT_AFTER = _words(
    "as wearing in with riding holding sitting standing walking running eating drinking dressed naked nude"
    " kissing hugging fighting playing dancing singing giving shaking smiling crying laughing on at and"
    " posing being getting doing having lying laying sleeping driving flying meeting in jail arrested"
    " shirtless topless bikini costume"
)
_BODY = _words(
    "face faces body head hair portrait photo picture likeness smile eyes selfie statue wax figure"
    " lookalike clone twin outfit"
)
# Words before a name that make it a mention, not a depiction.
_MENTION_BEFORE = _words("by about according quote quotes quoting regarding")
_MENTION_OF = _words(
    "style manner book books biography policies policy speech speeches quote quotes words works legacy"
    " views opinion opinions history era administration presidency campaign company career music song"
    " songs album albums movie movies film films"
)
_STYLE_BEFORE = _words("by style styled inspired artstyle after ala aesthetic manner like")
_STYLE_AFTER = _words("style styled inspired esque ish aesthetic artstyle inspired-style")


@dataclass(frozen=True, slots=True)
class _Entry:
    kind: str
    name: str
    source: str


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class NameMatch:
    entry: _Entry
    first: int  # token indexes, inclusive-exclusive
    last: int
    distance: int


def _tokens(text: str) -> list[_Token]:
    return [_Token(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _key(text: str) -> tuple[str, ...]:
    return tuple(t.text for t in _tokens(fold(text)))


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


class NameIndex:
    """Exact and one-edit look-ups from prompt words to listed names."""

    def __init__(self, lists: Mapping[str, Sequence[Term]]) -> None:
        self.by_first: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        self.entries: list[_Entry] = []
        self.joined: set[str] = set()  # "taylorswift": matched exactly only
        vocab: set[str] = set()
        for list_name, kind in _LIST_KIND.items():
            for term in lists.get(list_name, ()):
                index = len(self.entries)
                self.entries.append(_Entry(kind, term.text, term.source))
                keys = {_key(term.text), *(_key(a) for a in term.aliases)}
                joined = {("".join(k),) for k in keys if len(k) > 1 and len("".join(k)) >= JOINED_MIN}
                self.joined |= {k[0] for k in joined}
                keys |= joined
                for key in keys:
                    if not key:
                        continue
                    self.by_first.setdefault(key[0], []).append((key, index))
                    vocab.update(key)
        self.vocab = frozenset(vocab)
        self._by_deletion: dict[str, set[str]] = {}
        for word in vocab:
            if len(word) > SHORT_EXACT:
                for variant in _deletions(word) | {word}:
                    self._by_deletion.setdefault(variant, set()).add(word)
        self._cache: dict[str, dict[str, int]] = {}

    def near(self, word: str) -> dict[str, int]:
        """Name words within one edit (transpositions count once) of a prompt word, with the distance."""
        hit = self._cache.get(word)
        if hit is not None:
            return hit
        out: dict[str, int] = {word: 0} if word in self.vocab else {}
        if len(word) > SHORT_EXACT:
            for variant in _deletions(word) | {word}:
                for name_word in self._by_deletion.get(variant, ()):
                    if name_word not in out and OSA.distance(word, name_word, score_cutoff=1) <= 1:
                        out[name_word] = 1
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[word] = out
        return out

    def matches(self, tokens: Sequence[_Token]) -> list[NameMatch]:
        words = [t.text for t in tokens]
        near = [self.near(w) for w in words]
        found: list[NameMatch] = []
        for i, candidates in enumerate(near):
            for first_word in candidates:
                for key, index in self.by_first.get(first_word, ()):
                    n = len(key)
                    if i + n > len(words):
                        continue
                    dists = [near[i + k].get(key[k]) for k in range(n)]
                    if any(d is None for d in dists) or not self._acceptable(key, words[i : i + n], dists):
                        continue
                    if n == 1 and dists[0] and key[0] in self.joined:
                        continue
                    found.append(NameMatch(self.entries[index], i, i + n, sum(d or 0 for d in dists)))
        return found

    @staticmethod
    def _acceptable(key: tuple[str, ...], words: Sequence[str], dists: Sequence[int | None]) -> bool:
        if not any(dists):
            return True
        if any(d and len(k) <= SHORT_EXACT for k, d in zip(key, dists, strict=True)):
            return False
        if len(key) == 1:
            name, word = key[0], words[0]
            return len(name) >= SINGLE_FUZZY_MIN and (len(word) >= len(name) or len(name) >= SINGLE_DELETION_MIN)
        if all(dists) and not all(len(k) >= ALL_FUZZY_MIN for k in key):
            return False
        return fuzz.ratio(" ".join(words), " ".join(key)) >= MIN_RATIO


def _resolve(matches: list[NameMatch]) -> list[NameMatch]:
    """Longest span first, then fewest edits, then dead > living > public; overlaps dropped."""
    ranked = sorted(matches, key=lambda m: (m.first - m.last, m.distance, _KINDS.index(m.entry.kind), m.first))
    taken: list[NameMatch] = []
    used: set[int] = set()
    for m in ranked:
        span = set(range(m.first, m.last))
        if span & used:
            continue
        used |= span
        taken.append(m)
    return taken


def _is_possessive(text: str, tokens: Sequence[_Token], last: int) -> bool:
    """Name followed by "'s" (or a bare "s" after an apostrophe)."""
    if last >= len(tokens) or tokens[last].text != "s":
        return False
    between = text[tokens[last - 1].end : tokens[last].start]
    return len(between) == 1 and between in _APOSTROPHES


def _after(text: str, tokens: Sequence[_Token], m: NameMatch) -> tuple[bool, list[str]]:
    possessive = _is_possessive(text, tokens, m.last)
    start = m.last + 1 if possessive else m.last
    return possessive, [t.text for t in tokens[start : start + 3]]


def depiction_score(text: str, tokens: Sequence[_Token], m: NameMatch) -> tuple[float, str]:
    """How strongly the prompt asks for a picture of this person, with the cue that decided."""
    before = [t.text for t in tokens[max(0, m.first - 4) : m.first]]
    possessive, after = _after(text, tokens, m)
    if possessive:
        if after and after[0] in _BODY:
            return DEPICTION, f"possessive:{after[0]}"
        if not after or after[0] not in _DEPICT_AFTER:
            return MENTION, "possessive"
    prev1 = before[-1] if before else ""
    prev2 = before[-2] if len(before) > 1 else ""
    if prev1 in _MENTION_BEFORE or (prev1 == "of" and prev2 in _MENTION_OF):
        return MENTION, f"mention:{prev2 + ' ' if prev1 == 'of' else ''}{prev1}"
    if any(w in _DEPICT_BEFORE for w in before):
        return DEPICTION, "depict:" + next(w for w in reversed(before) if w in _DEPICT_BEFORE)
    if after and (after[0] in _DEPICT_AFTER or (after[0].endswith("ing") and len(after[0]) > 4)):
        return DEPICTION, f"subject:{after[0]}"
    if len(tokens) - (m.last - m.first) <= 2:
        return DEPICTION, "bare"  # the prompt is little more than the name: a picture of them
    return NEUTRAL, "neutral"


def style_score(text: str, tokens: Sequence[_Token], m: NameMatch) -> tuple[float, str]:
    before = [t.text for t in tokens[max(0, m.first - 3) : m.first]]
    _, after = _after(text, tokens, m)
    cue = next((w for w in reversed(before) if w in _STYLE_BEFORE), None)
    cue = cue or next((w for w in after[:2] if w in _STYLE_AFTER), None)
    if cue:
        return STYLE, f"style:{cue}"
    if m.first > 0 and "," in text[tokens[m.first - 1].end : tokens[m.first].start]:
        return LISTED_ARTIST, "style:list"  # "..., greg rutkowski, trending on artstation"
    if "artstation" in text or "deviantart" in text:
        return STYLE, "style:artstation"
    return BARE_ARTIST, "mention"


class NamesClassifier:
    """Scores public-figure (depictions of real living people) and living-artist-style."""

    name = "names"
    stage = Stage.PROMPT
    inline = True  # pure Python, linear in the (length-capped) prompt: runs in the caller's thread

    def __init__(self, lists: WordLists | None = None) -> None:
        self.lists = lists if lists is not None else load_lists()
        self.version = f"{VERSION}+{self.lists.sha256[:12]}"
        self.index = NameIndex(self.lists)

    @classmethod
    def from_options(
        cls, *, options: Mapping[str, Any] | None = None, lists: WordLists | None = None, **context: Any
    ) -> NamesClassifier:
        if options:
            raise ValueError(f"unknown names option(s): {', '.join(sorted(options))}; this classifier has none")
        return cls(lists)

    def classify(self, texts: Sequence[NormalisedText]) -> list[ClassifierResult]:
        return [self._one(t) for t in texts]

    def find(self, text: NormalisedText) -> tuple[str, list[_Token], list[NameMatch]]:
        folded = text.forms.get("folded")
        folded = folded if folded is not None else fold(text.original)
        tokens = _tokens(folded)
        return folded, tokens, _resolve(self.index.matches(tokens))

    def _one(self, text: NormalisedText) -> ClassifierResult:
        started = time.perf_counter()
        folded, tokens, matches = self.find(text)
        scores: dict[str, float] = {}
        evidence: list[Evidence] = []

        def add(category: Category, score: float, m: NameMatch, cue: str) -> None:
            scores[category] = max(scores.get(category, 0.0), score)
            start, end = tokens[m.first].start, tokens[m.last - 1].end
            fuzzy = "~" if m.distance else ""
            evidence.append(
                Evidence(
                    label=category,
                    score=score,
                    rule=f"name:{fuzzy}{m.entry.name} ({cue})",
                    span=Span(start=start, end=end, text=folded[start:end], form="folded"),
                )
            )

        for m in matches:
            if m.entry.kind == "public":
                score, cue = depiction_score(folded, tokens, m)
                add(Category.PUBLIC_FIGURE, score, m, cue)
            elif m.entry.kind == "living":
                score, cue = style_score(folded, tokens, m)
                add(Category.LIVING_ARTIST_STYLE, score, m, cue)
                if score < STYLE:  # no style cue: a picture *of* the artist is a picture of a real person
                    depict, why = depiction_score(folded, tokens, m)
                    if depict >= DEPICTION and why != "bare":
                        add(Category.PUBLIC_FIGURE, depict, m, why)
        evidence.sort(key=lambda e: -e.score)
        return ClassifierResult(
            classifier=self.name,
            version=self.version,
            scores=scores,
            evidence=tuple(evidence),
            latency_ms=(time.perf_counter() - started) * 1000,
        )
