"""Minors cue classifier: does the prompt mention or depict a minor?

It produces the `minors` *signal*, not a category: on its own a child in a prompt is fine. The
engine combines it with the sexual score (sexual/minors = min(minors, sexual)), and the image stage
treats any nudity after a minors prompt as a block. Cues come from the `minors` word list (child,
teen, schoolgirl, loli, ...) and from stated ages under 18 in digits or words ("12 year old",
"12yo", "aged 15", "fifteen-year-old"); "18 year old" and older are not cues.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from classifiers.lexicon import (
    AllowFilter,
    Match,
    TermMatcher,
    best_matches,
    masked_words_for,
    matcher_for,
    split_words_for,
)
from moderation.lists import WordLists, load_lists
from moderation.normalise import NormalisedText, basic, fold
from moderation.taxonomy import Signal
from moderation.types import ClassifierResult, Evidence, Span, Stage

# 2: masked cues ("ch*ld") read as the listed cue they fit. 3: dotted and split cues ("chi.ld",
# "chi ld") too, and the folded form reads upside-down and backwards text, small capitals and more.
VERSION = "3"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


ADULT_AGE = 18
CHILD_SCORE = 1.0  # 12 and under
TEEN_SCORE = 0.95  # 13 to 17

_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_ORDINALS = sorted(_words("first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth"))
_NUM = r"(?P<n>\d{1,3}|" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")"
_SEP = r"[\s-]*"
_B = r"(?<![\w.,])"  # a number that is not the tail of another number ("1.12", "3,12")
_AGE_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        _B + _NUM + _SEP + r"(?:years?|yrs?|yr)" + _SEP + r"old\b",  # 12 year old, 12-year-old, twelve years old
        _B + _NUM + _SEP + r"(?:years?|yrs?)\s+of\s+age\b",  # 12 years of age
        _B + r"(?P<n>\d{1,2})\s*(?:yo|y\.o\.?|y/o|yrs?o)(?![\w])",  # 12yo, 12 y.o., 12y/o
        r"\bage(?:d|s)?\s*[:=]?\s*" + _NUM + r"\b(?!\s*(?:%|percent|degrees))",  # aged 12, age: 15
        r"\bunder" + _SEP + r"(?:the\s+age\s+of\s+)?" + r"(?P<n>18|eighteen)\b",  # under 18
    )
)
# Ages in months or weeks are infants whatever the number.
_INFANT = re.compile(_B + r"\d{1,2}" + _SEP + r"(?:months?|weeks?|days?)" + _SEP + r"old\b", re.IGNORECASE)
_GRADER = re.compile(
    r"\b(?:(?:1st|2nd|3rd|[4-9]th|1[0-2]th)|" + "|".join(_ORDINALS) + r")" + _SEP + r"graders?\b",
    re.IGNORECASE,
)
# "a 12 year old whisky", "a 3-year-old dog": an age, but not of a child.
_NOT_A_CHILD = _words(
    "whisky whiskey scotch bourbon rum wine cognac brandy port cheese cheddar gouda tree trees oak house"
    " building car truck dog dogs puppy cat cats kitten horse horses pony cow bull goat sheep lamb pig"
    " tortoise turtle parrot bird fish company brand startup laptop phone computer bottle vintage rock"
    " mattress sourdough starter tradition"
)
_NEXT_WORD = re.compile(r"[\s-]*([^\W\d_]+)")


@dataclass(frozen=True, slots=True)
class AgeCue:
    age: int | None  # None for "under 18", months-old and graders: a minor without a number
    start: int
    end: int
    text: str


def _value(raw: str) -> int | None:
    raw = raw.lower()
    if raw.isdigit():
        return int(raw)
    return _NUMBER_WORDS.get(raw)


def age_cues(text: str) -> list[AgeCue]:
    """Stated ages under 18 in `text` (a basic-normalised prompt)."""
    cues: list[AgeCue] = []
    for pattern in _AGE_PATTERNS:
        for m in pattern.finditer(text):
            raw = m.group("n")
            if raw.lower() in ("18", "eighteen") and m.group(0).lower().startswith("under"):
                cues.append(AgeCue(None, m.start(), m.end(), m.group(0)))
                continue
            age = _value(raw)
            if age is None or age >= ADULT_AGE:
                continue
            following = _NEXT_WORD.match(text, m.end())
            if following and following.group(1).lower() in _NOT_A_CHILD:
                continue
            cues.append(AgeCue(age, m.start(), m.end(), m.group(0)))
    for pattern in (_INFANT, _GRADER):
        for m in pattern.finditer(text):
            following = _NEXT_WORD.match(text, m.end())
            if following and following.group(1).lower() in _NOT_A_CHILD:
                continue
            cues.append(AgeCue(None, m.start(), m.end(), m.group(0)))
    return cues


# The adult reading of a prompt (see `adult_readings`) puts these in place of each minor cue.
# Not "adult": it is itself a sexual word ("adult toy", "adult content").
_GIRLISH = re.compile(r"girl|daughter|niece|loli|sister", re.IGNORECASE)
_BOYISH = re.compile(r"boy|\bsons?\b|nephew|shota|brother", re.IGNORECASE)
_PLURAL_CUE = re.compile(r"(?:ren|ies|[^s]s|s')$", re.IGNORECASE)
# A stated age before a cue noun ("a 12 year old girl") reads as the noun alone.
_AGE_BEFORE_NOUN = re.compile(r"\bperson[\s-]+(?=(?:woman|man|women|men|person|people)\b)")
_AN_BEFORE_WORD = re.compile(r"\b([Aa])n(\s+)(?=(?:woman|man|women|men|person|people)\b)")


def _adult_word(cue: str) -> str:
    cue = cue.strip()
    plural = bool(_PLURAL_CUE.search(cue))
    if _GIRLISH.search(cue):
        word = "women" if plural else "woman"
    elif _BOYISH.search(cue):
        word = "men" if plural else "man"
    else:
        word = "people" if plural else "person"
    return word + "'s" if cue.endswith("'") else word


def _replace_spans(text: str, spans: Sequence[tuple[int, int]]) -> str:
    out: list[str] = []
    last = 0
    for start, end in sorted(spans):
        if start < last:
            continue  # overlapping cues ("12 year old" inside "a 12 year old schoolgirl" matches): first wins
        out += [text[last:start], _adult_word(text[start:end])]
        last = end
    out.append(text[last:])
    return _AN_BEFORE_WORD.sub(r"\1\2", _AGE_BEFORE_NOUN.sub("", "".join(out)))


def adult_readings(
    text: NormalisedText, minors: TermMatcher, allow: AllowFilter, *, min_weight: float = 0.5
) -> list[str]:
    """The prompt with every minor cue read as an adult ("a 12 year old girl" -> "a woman").

    A model that has learnt what sexual content is scores a prompt low once a child is named (it
    never saw the two together, and no such training text may be written), so the engine's
    minors rule also reads the sexual score of this adult reading: content that would be flagged
    as sexual for an adult is blocked when it names a minor. [] unless a cue weighs `min_weight`
    (the engine's minors floor: "girl" alone is no cue) or an age under 18 is stated.
    """
    base = text.forms.get("basic")
    base = base if base is not None else basic(text.original)

    def term_matches(form_text: str) -> list[Match]:
        allowed = allow.spans("folded", form_text)
        return [
            m for m in minors.find("folded", form_text) if not (allowed and AllowFilter.covers(allowed, m.start, m.end))
        ]

    def spans(matches: list[Match]) -> list[tuple[int, int]]:
        return [(m.start, m.end) for m in matches]

    ages = [(c.start, c.end) for c in age_cues(base)]
    folded_text = text.forms.get("folded")
    folded_text = folded_text if folded_text is not None else fold(text.original)
    base_terms = term_matches(base)
    if not ages and all(m.term.weight < min_weight for m in term_matches(folded_text) + base_terms):
        return []
    plain = _replace_spans(base, ages + spans(base_terms))
    # Ages first, on the basic form (folding turns "12yo" into "izyo"), then term cues on the
    # folded result, so "a 12yo sch00lgirl" reads "a woman".
    refolded = fold(_replace_spans(base, ages))
    deep = _replace_spans(refolded, spans(term_matches(refolded)))
    unchanged = (base, text.forms.get("folded"), text.original)
    return [r for r in dict.fromkeys((deep, plain)) if r not in unchanged]


class AdultReader:
    """`adult_readings` with the policy's minors and allow lists bound: what a model classifier needs."""

    def __init__(self, lists: WordLists) -> None:
        self._minors = matcher_for(lists["minors"])
        self._allow = AllowFilter(lists["allow"])

    def __call__(self, text: NormalisedText) -> list[str]:
        return adult_readings(text, self._minors, self._allow)


def age_score(cue: AgeCue) -> float:
    if cue.age is None or cue.age <= 12:
        return CHILD_SCORE
    return TEEN_SCORE


class MinorsCueClassifier:
    """Produces `scores={"minors": s}`: the strongest minor cue (list term or stated age)."""

    name = "minors"
    stage = Stage.PROMPT
    inline = True  # pure Python, linear in the (length-capped) prompt: runs in the caller's thread

    def __init__(self, lists: WordLists | None = None) -> None:
        self.lists = lists if lists is not None else load_lists()
        self.version = f"{VERSION}+{self.lists.sha256[:12]}"
        self._matchers = {Signal.MINORS.value: matcher_for(self.lists["minors"])}
        self._allow = AllowFilter(self.lists["allow"])
        self._masked = masked_words_for((tuple(self.lists["minors"]),))
        self._split = split_words_for((tuple(self.lists["minors"]),))

    @classmethod
    def from_options(
        cls, *, options: Mapping[str, Any] | None = None, lists: WordLists | None = None, **context: Any
    ) -> MinorsCueClassifier:
        if options:
            raise ValueError(f"unknown minors option(s): {', '.join(sorted(options))}; this classifier has none")
        return cls(lists)

    def classify(self, texts: Sequence[NormalisedText]) -> list[ClassifierResult]:
        return [self._one(t) for t in texts]

    def _one(self, text: NormalisedText) -> ClassifierResult:
        started = time.perf_counter()
        evidence: list[Evidence] = []
        matches = best_matches(self._matchers, self._allow, text, self._masked, self._split, guessed=False)
        for m in matches.get(Signal.MINORS.value, []):
            evidence.append(
                Evidence(
                    label=Signal.MINORS.value,
                    score=m.term.weight,
                    rule=f"term:{m.term.text}",
                    span=Span(start=m.start, end=m.end, text=m.text, form=m.form),
                )
            )
        base = text.forms.get("basic")
        base = base if base is not None else basic(text.original)
        for cue in age_cues(base):
            evidence.append(
                Evidence(
                    label=Signal.MINORS.value,
                    score=age_score(cue),
                    rule=f"age:{cue.age}" if cue.age is not None else "age:minor",
                    span=Span(start=cue.start, end=cue.end, text=cue.text, form="basic"),
                )
            )
        evidence.sort(key=lambda e: -e.score)
        scores = {Signal.MINORS.value: evidence[0].score} if evidence else {}
        return ClassifierResult(
            classifier=self.name,
            version=self.version,
            scores=scores,
            evidence=tuple(evidence),
            latency_ms=(time.perf_counter() - started) * 1000,
        )
