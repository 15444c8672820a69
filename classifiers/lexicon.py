"""Word-list classifier: scores each category by the strongest listed term found in a prompt.

Terms are matched on word boundaries in two forms of the prompt: the original (case-insensitive,
so evidence points at what the user typed) and the folded form (homoglyphs, leetspeak, spacing
and invisible characters undone). In the folded form every letter may repeat ("nuuuude" meets
"nude") but never vanish ("ass" never meets "as", "class" or "assassin"). An allow-phrase such
as "chicken breast" neutralises a term that lies wholly inside it. Two more readings are scanned
with the folded patterns when a prompt calls for them: spaced letters after a one-letter word
("a n u d e"); masked letters or a dot inside a word read as the listed term they fit ("n*de",
"nu.de"; `MaskedWords`); and a listed word split in two by a space ("nu de"; `SplitWords`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from moderation.lists import TERM_LISTS, Term, WordLists, load_lists
from moderation.normalise import NormalisedText, basic, fold, restore_vowels, word_rank
from moderation.taxonomy import Category
from moderation.types import ClassifierResult, Evidence, Span, Stage

# 2: masked letters ("n*de") read as the listed term they fit. 3: dotted and split words ("nu.de",
# "nu de") too, and the folded form reads upside-down and backwards text, small capitals and more.
# 4: words typed without vowels ("nkd" read as "naked"), scanned as the "spelled" form.
VERSION = "4"
SEXUAL_MINORS = Category.SEXUAL_MINORS.value
MIN_CAP = 0.8  # a lower cap would quietly undo term weights that policies' thresholds rely on
# With `corroborate_below` set, a category whose strongest term weighs less than it is a weak score,
# counted only if a model scores that category at least `corroborate_at` (or no model scores it).
# This is the fallback for a policy that omits `corroborate_at`; the shipped presets carry the value
# scripts/train_prompt_head.py chose on validation for their head (docs/word-lists.md).
DEFAULT_CORROBORATE_AT = 0.05
_BEFORE = r"(?<![^\W_])"  # not preceded by a letter or digit
_AFTER = r"(?![^\W_])"  # not followed by a letter or digit
_SEPARATOR = r"[\W_]*"  # optional punctuation or space in the folded form: "self-harm", "selfharm"
_WORD_BREAK = r"[\W_]+"  # a required break between the words of a short phrase
_MIN_JOINED = 8  # letters a phrase needs before its words may run together in the folded form


def _plain_units(text: str) -> list[str]:
    """The term as typed, whitespace flexible; matched case-insensitively on the original prompt.

    Quotes and commas may stand beside the space between words: "a 'Sex on the Beach' cocktail"
    meets the allow phrase "sex on the beach cocktail" in the original form as in the folded one,
    and a hyphen may stand for it: "a nude-colored dress" meets "nude colored".
    """
    units: list[str] = []
    for i, word in enumerate(text.split()):
        if i:
            units.append(r"(?:[\W_]*\s[\W_]*|-)")
        units.extend(re.escape(c) for c in word)
    return units


def _folded_units(text: str) -> list[str]:
    """The folded term with every letter allowed to repeat.

    Punctuation inside a word is optional ("self-harm", "selfharm"). Between words a separator is
    required unless the joined phrase is long enough to be unmistakable: "c h i l d p o r n" folds
    to "childporn", but "go die" must not meet "goodies".
    """
    joinable = sum(c.isalnum() for c in text) >= _MIN_JOINED
    units: list[str] = []
    pending = ""
    for char in text:
        if char.isalnum():
            if pending and units:
                units.append(_SEPARATOR if joinable or not pending.isspace() else _WORD_BREAK)
            pending = ""
            units.append(re.escape(char) + ("+" if char.isalpha() else ""))
        else:
            pending += char
    return units


def _plural(text: str) -> str:
    """Optional plural suffix: "es" after sibilants ("asses"), else "s" (so "spic" never meets "spices")."""
    if not text[-1:].isalpha():
        return ""
    return r"(?:es)?" if text.endswith(("s", "x", "z", "ch", "sh")) else r"s?"


@dataclass(frozen=True, slots=True)
class Match:
    term: Term
    start: int
    end: int
    text: str
    form: str


class _Trie:
    """Terms as a prefix tree of regex units, so one regex tries each prefix once, not each term."""

    def __init__(self) -> None:
        self.children: dict[str, _Trie] = {}
        self.term: int | None = None
        self.plural = ""

    def add(self, units: list[str], index: int, plural: str) -> None:
        node = self
        for unit in units:
            node = node.children.setdefault(unit, _Trie())
        if node.term is None:
            node.term, node.plural = index, plural

    def pattern(self, order: list[int]) -> str:
        alts = [unit + child.pattern(order) for unit, child in self.children.items()]
        if self.term is not None:
            # The term ends here: an optional plural, then a word boundary, then an empty group
            # whose number says which term matched. Listed last, so longer terms win.
            order.append(self.term)
            alts.append(self.plural + _AFTER + "()")
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"


@lru_cache(maxsize=128)
def matcher_for(terms: tuple[Term, ...]) -> TermMatcher:
    """Compiled matchers are shared: compiling a large list takes tens of milliseconds, and
    policies that edit one list leave the other lists' matchers as they were."""
    return TermMatcher(terms)


class TermMatcher:
    """One prefix-tree regex per form type over a list of terms."""

    def __init__(self, terms: Sequence[Term]) -> None:
        # Stronger terms first, so that of two terms that fold alike the stronger one is kept.
        ranked = sorted(terms, key=lambda t: -t.weight)
        plain, folded = _Trie(), _Trie()
        for i, term in enumerate(ranked):
            b, f = basic(term.text), fold(term.text)
            if b.strip():
                plain.add(_plain_units(b), i, _plural(b))
            if any(c.isalnum() for c in f):
                folded.add(_folded_units(f), i, _plural(f.rstrip()))
        self._plain, self._plain_terms = self._compile(plain, ranked, re.IGNORECASE)
        self._folded, self._folded_terms = self._compile(folded, ranked, 0)

    @staticmethod
    def _compile(trie: _Trie, ranked: list[Term], flags: int) -> tuple[re.Pattern[str] | None, tuple[Term, ...]]:
        if not trie.children:
            return None, ()
        order: list[int] = []
        body = trie.pattern(order)
        return re.compile(_BEFORE + body, flags), tuple(ranked[i] for i in order)

    def find(self, form: str, text: str) -> list[Match]:
        pattern, terms = (self._plain, self._plain_terms) if form == "original" else (self._folded, self._folded_terms)
        if pattern is None:
            return []
        return [
            Match(terms[m.lastindex - 1], m.start(), m.end(), m.group(0), form)
            for m in pattern.finditer(text)
            if m.lastindex is not None
        ]


# Spaced-out letters that begin with a one-letter word: "a n u d e" (a nude) or "i n c e s t"
# (incest). The normaliser reads the first letter as an article; this variant reads it as a letter.
_SPACED_FROM_ARTICLE = re.compile(
    r"(?<![^\W_])[ai](?P<sep>[ .\-_*·•/\\])(?:[^\W_](?P=sep))+[^\W_](?![^\W_])", re.IGNORECASE
)


# Letters masked inside a word: "n*de", "r#pe", "n_de". Only runs with letters on both
# sides count, so "*sparkles*", "**bold**", "5*" and "#hashtag" are left alone.
_MASKED = re.compile(r"[^\W\d_]+(?:[*#_]+[^\W\d_]+)+")
_MASK_CHARS = re.compile(r"[*#_]")
# A dot inside a word, hiding nothing: "nu.de", "n.ude". Runs of single dotted letters ("n.u.d.e")
# are already joined by the normaliser; "e.g" and "a.m" join to no listed word.
_DOTTED = re.compile(r"[^\W\d_]+(?:\.[^\W\d_]+)+")


@lru_cache(maxsize=32)
def listed_words(lists: tuple[tuple[Term, ...], ...]) -> frozenset[str]:
    """The one-word terms of `lists`, folded (~15 ms): what masked, dotted and split words may be read as."""
    return frozenset(w for w in (fold(term.text).strip() for terms in lists for term in terms) if w.isalpha())


class MaskedWords:
    """Reads masked letters (and a dot inside a word) back as the listed word they hide.

    Masking is how people write a word they know is censored, so a masked word is read as the
    listed word it fits (one letter per mask character, at most a third of the letters hidden),
    not as the most common English word: "n*de" is "nude", never "node". A mask that fits two
    listed words, or hides too much to tell ("p**n": porn, pawn, plan), is left as it is: the
    guess would put words in the user's mouth.
    """

    def __init__(self, lists: tuple[tuple[Term, ...], ...]) -> None:
        # One-word terms only: "plan" from "plan an attack" is no slur.
        words = {w for w in listed_words(lists) if len(w) >= 3}
        by_length: dict[int, list[str]] = {}
        for word in sorted(words):
            by_length.setdefault(len(word), []).append(word)
        self._by_length = by_length
        self._words = frozenset(words)

    def resolve(self, text: str) -> str:
        """`text` with each masked or dotted word that fits a listed word replaced by it (padded
        to the same length, so evidence offsets still point into the folded form)."""
        return _DOTTED.sub(self._dotted, _MASKED.sub(self._word, text))

    def _dotted(self, match: re.Match[str]) -> str:
        token = match.group(0)
        joined = token.replace(".", "")
        stem = joined[:-1] if joined.endswith("s") else joined
        listed = joined in self._words or stem in self._words
        return joined + " " * (len(token) - len(joined)) if listed else token

    def _word(self, match: re.Match[str]) -> str:
        token = match.group(0)
        hidden = len(_MASK_CHARS.findall(token))
        if len(token) - hidden < 2 * hidden:  # "s**t" could be a dozen words, listed or not
            return token
        for stem, suffix in ((token, ""), (token[:-1], "s")) if token.endswith("s") else ((token, ""),):
            # The rest are letters: nothing to escape.
            pattern = re.compile(_MASK_CHARS.sub(lambda _: r"[^\W\d_]", stem))
            fits = [w for w in self._by_length.get(len(stem), ()) if pattern.fullmatch(w)]
            if len(fits) == 1:
                return fits[0] + suffix
        return token


@lru_cache(maxsize=32)
def masked_words_for(lists: tuple[tuple[Term, ...], ...]) -> MaskedWords:
    """Shared like `matcher_for`: folding every listed term takes ~15 ms."""
    return MaskedWords(lists)


# Two letter runs with one space between them: a listed word split in two ("nu de").
_SPLIT_PAIR = re.compile(r"(?<![^\W_])([^\W\d_]{2,}) (?=([^\W\d_]{2,})(?![^\W_]))")
_COMMON_RANK = 5000  # vocabulary words this frequent are words in their own right: "pen is", "an al"


class SplitWords:
    """Reads a listed word split in two by a space ("nu de", "nak ed", "to pless") as one word.

    Only where the split hides something. Each part has two letters or more ("lol i" is no "loli");
    neither part is a listed term itself; neither is a vocabulary word of four letters or more, so
    compounds of real words ("strap on", "glory hole", "cam girl") stay apart; and the two are not
    both common words ("pen is", "an al"). Without MiniLM's vocabulary nothing is joined. In
    85,833 training and evaluation texts, 19 have a pair that joins, each to the word the text
    meant ("pro ana", "douche bag", "nig gers").
    """

    def __init__(self, lists: tuple[tuple[Term, ...], ...]) -> None:
        self._listed = listed_words(lists)
        self._words = frozenset(w for w in self._listed if len(w) >= 4)
        self._has_vocabulary = word_rank("the") is not None  # without it, words and fragments look alike

    def _is_listed(self, part: str) -> bool:
        return part in self._listed or (part.endswith("s") and part[:-1] in self._listed)

    def _joins(self, first: str, second: str) -> bool:
        joined = first + second
        if joined not in self._words and not (joined.endswith("s") and joined[:-1] in self._words):
            return False
        if not self._has_vocabulary:
            return False
        ranks = [word_rank(first), word_rank(second)]
        if any(r is not None and len(p) >= 4 for r, p in zip(ranks, (first, second), strict=True)):
            return False
        if all(r is not None and r < _COMMON_RANK for r in ranks):
            return False
        return not (self._is_listed(first) or self._is_listed(second))

    def resolve(self, text: str) -> str:
        """`text` with each split listed word joined (a space moved after it: same length, so
        evidence offsets still point into the folded form)."""
        out = list(text)
        taken = -1
        for m in _SPLIT_PAIR.finditer(text):
            if m.start() <= taken or not self._joins(m.group(1), m.group(2)):
                continue
            first, second = m.group(1), m.group(2)
            out[m.start() : m.start() + len(first) + 1 + len(second)] = list(first + second + " ")
            taken = m.start() + len(first) + 1 + len(second)
        return "".join(out)


@lru_cache(maxsize=32)
def split_words_for(lists: tuple[tuple[Term, ...], ...]) -> SplitWords:
    """Shared like `matcher_for`."""
    return SplitWords(lists)


def scan_forms(
    text: NormalisedText,
    masked: MaskedWords | None = None,
    split: SplitWords | None = None,
    *,
    guessed: bool = True,
) -> list[tuple[str, str]]:
    """(form, text) pairs to scan; forms other than "original" use the folded patterns.

    Besides the original and the folded form, a "spaced" form is scanned when spaced-out letters
    start with "a" or "i", gluing that letter on: both readings are then checked; a "masked" form
    when masked letters fit a listed word; a "split" form when a listed word is split in two; and,
    unless `guessed` is false, a "spelled" form with the vowels of words typed without them
    restored, which is a guess (the minors rule, a hard block, does not take "bby" as "baby").
    Algospeak is not spelled out here, unlike in the models' `spelled` form: the lists carry the
    coined words at weights of their own ("kms" is also kilometres).
    """
    forms = [("original", text.original)]
    folded = text.forms.get("folded")
    folded = folded if folded is not None else fold(text.original)
    forms.append(("folded", folded))
    base = text.forms.get("basic") or basic(text.original)
    if _SPACED_FROM_ARTICLE.search(base):
        glued = fold(_SPACED_FROM_ARTICLE.sub(lambda m: m.group(0).replace(m.group("sep"), ""), base))
        if glued != folded:
            forms.append(("spaced", glued))
    if masked is not None and (_MASK_CHARS.search(folded) or _DOTTED.search(folded)):
        unmasked = masked.resolve(folded)
        if unmasked != folded:
            forms.append(("masked", unmasked))
    if split is not None:
        joined = split.resolve(folded)
        if joined != folded:
            forms.append(("split", joined))
    if guessed:
        restored = restore_vowels(folded, text.original)
        if restored != folded:
            forms.append(("spelled", restored))
    return forms


class AllowFilter:
    """Spans covered by allow-phrases, per form; a match inside one is not evidence."""

    def __init__(self, terms: Sequence[Term]) -> None:
        self._matcher = matcher_for(tuple(terms))

    def spans(self, form: str, text: str) -> list[tuple[int, int]]:
        return [(m.start, m.end) for m in self._matcher.find(form, text)]

    @staticmethod
    def covers(spans: list[tuple[int, int]], start: int, end: int) -> bool:
        return any(s <= start and end <= e for s, e in spans)


def best_matches(
    matchers: Mapping[str, TermMatcher],
    allow: AllowFilter,
    text: NormalisedText,
    masked: MaskedWords | None = None,
    split: SplitWords | None = None,
    *,
    guessed: bool = True,
) -> dict[str, list[Match]]:
    """Per list, the non-neutralised matches, one per term (original-form evidence preferred)."""
    found: dict[str, dict[str, Match]] = {name: {} for name in matchers}
    for form, form_text in scan_forms(text, masked, split, guessed=guessed):
        allowed = allow.spans(form, form_text)
        for name, matcher in matchers.items():
            seen = found[name]
            for m in matcher.find(form, form_text):
                if m.term.text in seen or (allowed and AllowFilter.covers(allowed, m.start, m.end)):
                    continue
                seen[m.term.text] = m
    return {name: list(ms.values()) for name, ms in found.items() if ms}


class LexiconClassifier:
    """Scores the 13 OpenAI categories from the word lists (max weight of matched terms)."""

    name = "lexicon"
    stage = Stage.PROMPT
    inline = True  # pure Python, linear in the (length-capped) prompt: runs in the caller's thread

    def __init__(
        self,
        lists: WordLists | None = None,
        *,
        max_evidence: int = 8,
        cap: float = 1.0,
        corroborate_below: float = 0.0,
        corroborate_at: float = DEFAULT_CORROBORATE_AT,
    ) -> None:
        self.lists = lists if lists is not None else load_lists()
        self.version = (
            f"{VERSION}+{self.lists.sha256[:12]}"
            + (f"+cap{cap:g}" if cap != 1.0 else "")
            + (f"+weak<{corroborate_below:g}@{corroborate_at:g}" if corroborate_below > 0 else "")
        )
        self.max_evidence = max_evidence
        self.cap = cap
        self.corroborate_below = corroborate_below
        self.corroborate_at = corroborate_at
        self._matchers = {name: matcher_for(self.lists[name]) for name in TERM_LISTS if self.lists[name]}
        self._allow = AllowFilter(self.lists["allow"])
        term_lists = tuple(tuple(self.lists[name]) for name in TERM_LISTS)
        self._masked = masked_words_for(term_lists)
        self._split = split_words_for(term_lists)

    @classmethod
    def from_options(
        cls, *, options: Mapping[str, Any] | None = None, lists: WordLists | None = None, **context: Any
    ) -> LexiconClassifier:
        opts = dict(options or {})
        max_evidence = opts.pop("max_evidence", 8)
        cap = opts.pop("cap", 1.0)
        below = opts.pop("corroborate_below", 0.0)
        at = opts.pop("corroborate_at", DEFAULT_CORROBORATE_AT)
        if opts:
            raise ValueError(
                f"unknown lexicon option(s): {', '.join(sorted(opts))}; "
                "known: cap, corroborate_at, corroborate_below, max_evidence"
            )
        if not isinstance(max_evidence, int) or isinstance(max_evidence, bool) or max_evidence < 1:
            raise ValueError(f"lexicon option max_evidence must be a positive integer, got {max_evidence!r}")
        if isinstance(cap, bool) or not isinstance(cap, int | float) or not MIN_CAP <= cap <= 1.0:
            raise ValueError(f"lexicon option cap must be a number in [{MIN_CAP}, 1], got {cap!r}")
        if isinstance(below, bool) or not isinstance(below, int | float) or not 0.0 <= below <= 1.0:
            raise ValueError(f"lexicon option corroborate_below must be a number in [0, 1], got {below!r}")
        if isinstance(at, bool) or not isinstance(at, int | float) or not 0.0 <= at < 1.0:
            raise ValueError(f"lexicon option corroborate_at must be a number in [0, 1), got {at!r}")
        return cls(
            lists, max_evidence=max_evidence, cap=float(cap), corroborate_below=float(below), corroborate_at=float(at)
        )

    def _weight(self, category: str, term: Term) -> float:
        """A term's score: its list weight, at most `cap` (never for the hard-block category).

        A listed word at full weight (a slur quoted in a benign sentence) scored 1.0, above every
        confident model score; a cap just under 1 ranks it below them while every decision a
        threshold under the cap takes stays as it was. sexual/minors terms keep their weight.
        """
        return term.weight if category == SEXUAL_MINORS else min(term.weight, self.cap)

    def classify(self, texts: Sequence[NormalisedText]) -> list[ClassifierResult]:
        return [self._one(t) for t in texts]

    def _one(self, text: NormalisedText) -> ClassifierResult:
        started = time.perf_counter()
        scores: dict[str, float] = {}
        weak: dict[str, float] = {}
        evidence: list[Evidence] = []
        for category, matches in best_matches(self._matchers, self._allow, text, self._masked, self._split).items():
            matches.sort(key=lambda m: (-m.term.weight, m.start))
            top = matches[0].term
            if top.weight < self.corroborate_below and category != SEXUAL_MINORS:
                weak[category] = self._weight(category, top)  # a topic word: the engine asks a model to confirm
            else:
                scores[category] = self._weight(category, top)
            evidence.extend(
                Evidence(
                    label=category,
                    score=self._weight(category, m.term),
                    rule=f"term:{m.term.text}",
                    span=Span(start=m.start, end=m.end, text=m.text, form=m.form),
                )
                for m in matches[: self.max_evidence]
            )
        evidence.sort(key=lambda e: -e.score)
        return ClassifierResult(
            classifier=self.name,
            version=self.version,
            scores=scores,
            weak_scores=weak,
            corroboration_floor=self.corroborate_at,
            evidence=tuple(evidence),
            latency_ms=(time.perf_counter() - started) * 1000,
        )
