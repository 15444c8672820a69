"""Embedding classifier: all-MiniLM-L6-v2 sentence vectors + a small trained multi-label head.

The head is plain arrays applied with numpy (scikit-learn is a training-time dependency only):
dense layers with ReLU between them over the sentence vector, word-level models beside it — the
word toxicity model (classifiers/word_toxicity.py) in the shipped head, an optional sparse
word/bigram model — because sentence vectors blur single decisive words and bag-of-words models
miss paraphrase, and per-category calibration, fitted on validation data, that stacks the logits
into one probability a policy threshold can mean something for. Every form of a prompt (original, basic,
folded), every token window of a long prompt and every clause group of a long prompt is scored; a
category's score is the max over them (clause groups discounted for their number), so leetspeak,
look-alike letters and a phrase buried in a long description still count. A prompt that names a
minor is also scored read as about adults (`classifiers/minors.py: adult_readings`); that sexual
score is reported apart, as the `sexual-if-adult` signal for the engine's minors rule, because
merged into `sexual` it would let ordinary child scenes meet the hard block's low floor.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog

from classifiers.base import ClassifierLoadError
from classifiers.word_toxicity import WordToxicityModel
from moderation.normalise import FORMS_VERSION
from moderation.taxonomy import Category, Signal
from moderation.types import ClassifierResult, Stage

if TYPE_CHECKING:
    from classifiers.minilm_encoder import Backend, MiniLMEncoder
    from classifiers.minors import AdultReader
    from moderation.lists import WordLists
    from moderation.normalise import NormalisedText

log = structlog.get_logger(__name__)

HEAD_FILE = "prompt_head.npz"
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


_CLAUSE = re.compile(r"(?<=[.,;:!?\n])\s+")
SEGMENT_MIN_WORDS = 24  # shorter prompts are one segment: no extra cost for typical T2I prompts
SEGMENT_WORDS = 16
MAX_SEGMENTS = 32
# The max over n clause-group scores gives a benign long text n chances to score high, so each
# group's odds are divided by min(n, MAX_SEGMENT_DIVISOR) before the max (a Bonferroni-style
# correction); the whole text is never discounted. On validation it cut the long benign texts
# scored >= 0.5 from 15.0% to 10.7% for 1.8 points of their recall (long-text AUPRC 0.980 -> 0.981;
# the test part agreed). The cap bounds what padding a harmful clause with filler can buy an
# evader: a clause at 0.95 stays >= 0.82 however long the text (docs/model_card.md).
MAX_SEGMENT_DIVISOR = 4


def segments(text: str) -> list[str]:
    """Clause groups of ~16 words for long prompts, so one harmful clause inside a long benign
    description is scored on its own instead of being averaged away; [] for short prompts."""
    if len(text.split()) < SEGMENT_MIN_WORDS:
        return []
    out: list[str] = []
    current: list[str] = []
    for clause in _CLAUSE.split(text):
        words = clause.split()
        while len(words) > SEGMENT_WORDS * 2:  # one long run-on clause: cut it
            out.append(" ".join(words[:SEGMENT_WORDS]))
            words = words[SEGMENT_WORDS // 2 :]
        if current and len(current) + len(words) > SEGMENT_WORDS:
            out.append(" ".join(current))
            current = []
        current += words
    if current:
        out.append(" ".join(current))
    return out[:MAX_SEGMENTS] if len(out) > 1 else []


def _divide_odds(p: np.ndarray, divisor: np.ndarray) -> np.ndarray:
    """p / (p + (1 - p) * divisor): the probability whose odds are p's divided by `divisor`."""
    return (p / (p + (1.0 - p) * divisor)).astype(np.float32)


def lexical_terms(text: str) -> set[str]:
    """Word unigrams and bigrams, lower-cased: the sparse model's features (binary presence)."""
    words = _WORD.findall(text.lower())
    return set(words) | {f"{a} {b}" for a, b in itertools.pairwise(words)}


def assets_dir() -> Path:
    return Path(str(resources.files("classifiers").joinpath("assets")))


@dataclass(frozen=True)
class PromptHead:
    """Dense layers + per-category calibration, loaded from an .npz of plain arrays."""

    categories: tuple[str, ...]
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    calib_a: np.ndarray
    calib_b: np.ndarray
    meta: Mapping[str, Any]
    lex_vocab: tuple[str, ...] = ()
    lex_weights: np.ndarray | None = None  # [len(lex_vocab), n_categories]
    lex_bias: np.ndarray | None = None
    calib_lex: np.ndarray | None = None  # per-category weight of the sparse logit in the stack
    word_model: WordToxicityModel | None = None  # loaded from the file meta["word_model"] names
    calib_word: np.ndarray | None = None  # per-category weight of the word toxicity logit in the stack

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lex_index", {t: i for i, t in enumerate(self.lex_vocab)})

    @property
    def has_lexical(self) -> bool:
        return self.lex_weights is not None and self.calib_lex is not None

    @property
    def has_word_model(self) -> bool:
        return self.word_model is not None and self.calib_word is not None

    @property
    def word_model_file(self) -> str | None:
        return self.meta.get("word_model")

    @property
    def version(self) -> str:
        return str(self.meta["version"])

    @property
    def delta_file(self) -> str | None:
        return self.meta.get("encoder_delta")

    @classmethod
    def load(cls, path: Path) -> PromptHead:
        if not path.is_file():
            raise ClassifierLoadError(f"embedding head not found: {path}")
        with np.load(path, allow_pickle=False) as data:
            n_layers = int(data["n_layers"])
            meta = json.loads(str(data["meta"]))
            word_model = None
            if "calib_word" in data:
                word_model = WordToxicityModel.load(path.parent / str(meta.get("word_model", "")))
            head = cls(
                categories=tuple(str(c) for c in data["categories"]),
                weights=tuple(data[f"w{i}"].astype(np.float32) for i in range(n_layers)),
                biases=tuple(data[f"b{i}"].astype(np.float32) for i in range(n_layers)),
                calib_a=data["calib_a"].astype(np.float32),
                calib_b=data["calib_b"].astype(np.float32),
                meta=meta,
                lex_vocab=tuple(str(t) for t in data["lex_vocab"]) if "lex_vocab" in data else (),
                lex_weights=data["lex_weights"].astype(np.float32) if "lex_weights" in data else None,
                lex_bias=data["lex_bias"].astype(np.float32) if "lex_bias" in data else None,
                calib_lex=data["calib_lex"].astype(np.float32) if "calib_lex" in data else None,
                word_model=word_model,
                calib_word=data["calib_word"].astype(np.float32) if "calib_word" in data else None,
            )
        if head.weights[-1].shape[1] != len(head.categories):
            raise ClassifierLoadError(f"embedding head {path.name}: output size does not match its categories")
        return head

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {
            "n_layers": np.asarray(len(self.weights)),
            "categories": np.asarray(self.categories),
            "calib_a": self.calib_a.astype(np.float32),
            "calib_b": self.calib_b.astype(np.float32),
            "meta": np.asarray(json.dumps(dict(self.meta), sort_keys=True)),
        }
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            arrays[f"w{i}"] = w.astype(np.float32)
            arrays[f"b{i}"] = b.astype(np.float32)
        if self.has_lexical:
            arrays["lex_vocab"] = np.asarray(self.lex_vocab)
            arrays["lex_weights"] = np.asarray(self.lex_weights).astype(np.float16)
            arrays["lex_bias"] = np.asarray(self.lex_bias).astype(np.float32)
            arrays["calib_lex"] = np.asarray(self.calib_lex).astype(np.float32)
        if self.has_word_model:
            arrays["calib_word"] = np.asarray(self.calib_word).astype(np.float32)
            beside = path.parent / str(self.word_model_file)  # load() looks for it there
            if not beside.is_file():
                self.word_model.save(beside)  # type: ignore[union-attr]
        np.savez_compressed(path, **arrays)

    def lexical_logits(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), n_categories] logits of the sparse word/bigram model (zeros if the head has none)."""
        out = np.zeros((len(texts), len(self.categories)), dtype=np.float32)
        if not self.has_lexical:
            return out
        index: dict[str, int] = self._lex_index  # type: ignore[attr-defined]
        weights = np.asarray(self.lex_weights)
        for row, text in enumerate(texts):
            hits = [index[t] for t in lexical_terms(text) if t in index]
            out[row] = self.lex_bias + (weights[hits].sum(axis=0) if hits else 0.0)
        return out

    def logits(self, x: np.ndarray) -> np.ndarray:
        h = x.astype(np.float32)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < last:
                h = np.maximum(h, 0.0)
        return h

    def word_logits(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), n_categories]: the word-level models' weighted share of each category's logit."""
        out = np.zeros((len(texts), len(self.categories)), dtype=np.float32)
        if self.has_lexical:
            out += self.lexical_logits(texts) * self.calib_lex
        if self.has_word_model:
            out += self.word_model.logits(texts)[:, None] * self.calib_word  # type: ignore[union-attr]
        return out

    def probabilities(self, x: np.ndarray, word_logits: np.ndarray | None = None) -> np.ndarray:
        """Calibrated probabilities; `word_logits` (from `word_logits`) rows align with `x` rows."""
        z = self.logits(x) * self.calib_a + self.calib_b
        if word_logits is not None:
            z = z + word_logits
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


class EmbeddingClassifier:
    """Scores prompts per category; batch-first, max over forms and windows."""

    name = "embedding"
    stage = Stage.PROMPT

    def __init__(
        self,
        *,
        head_path: Path | None = None,
        backend: Backend = "auto",
        threads: int | None = None,
        batch_size: int = 32,
        device: str = "cpu",
        precision: str = "f32",
        adult_reader: AdultReader | None = None,
    ) -> None:
        from classifiers.minilm_encoder import MiniLMEncoder, Windowing

        path = head_path or assets_dir() / HEAD_FILE
        self.head = PromptHead.load(path)
        # The weights' own digest in the version: two retrains on one day must not look alike in audit records.
        digest = hashlib.sha256(path.read_bytes())
        for extra in (self.head.delta_file, self.head.word_model_file):
            if extra and (path.parent / extra).is_file():
                digest.update((path.parent / extra).read_bytes())
        # bf16 scores differ from float32 ones (by < 0.011 on 600 validation prompts): say so in audit records.
        self.version = f"{self.head.version}+forms{FORMS_VERSION}+{digest.hexdigest()[:10]}" + (
            "+bf16" if precision == "bf16" else ""
        )
        delta = self.head.delta_file
        delta_path = (path.parent / delta) if delta else None
        if delta_path is not None and not delta_path.is_file():
            raise ClassifierLoadError(f"embedding encoder delta not found: {delta_path}")
        windowing = Windowing(max_tokens=int(self.head.meta.get("max_tokens", 128)))
        # Prompts that name a minor are also scored read as adults (the `sexual-if-adult` signal).
        self.adult_reader = adult_reader if Category.SEXUAL.value in self.head.categories else None
        self.encoder: MiniLMEncoder = MiniLMEncoder(
            backend=backend,
            delta_path=delta_path,
            windowing=windowing,
            threads=threads,
            batch_size=batch_size,
            device=device,
            precision=precision,
        )

    @classmethod
    def from_options(
        cls, options: Mapping[str, Any] | None = None, *, lists: WordLists | None = None, **_context: Any
    ) -> EmbeddingClassifier:
        from classifiers.minors import AdultReader
        from moderation.lists import load_lists

        opts = dict(options or {})
        unknown = set(opts) - {"backend", "threads", "batch_size", "head_path", "device", "precision"}
        if unknown:
            raise ClassifierLoadError(f"embedding: unknown options {sorted(unknown)}")
        backend = opts.get("backend", "auto")
        if backend not in ("auto", "openvino", "onnx", "torch"):
            raise ClassifierLoadError(f"embedding: backend must be auto, openvino, onnx or torch, not {backend!r}")
        precision = str(opts.get("precision", "f32"))
        if precision not in ("f32", "bf16"):
            raise ClassifierLoadError(f"embedding: precision must be f32 or bf16, not {precision!r}")
        if precision == "bf16" and backend in ("onnx", "torch"):
            raise ClassifierLoadError(f"embedding: precision bf16 needs backend openvino (or auto), not {backend!r}")
        head_path = Path(opts["head_path"]) if opts.get("head_path") else None
        return cls(
            head_path=head_path,
            backend=backend,
            threads=opts.get("threads"),
            batch_size=int(opts.get("batch_size", 32)),
            device=str(opts.get("device", "cpu")),
            precision=precision,
            adult_reader=AdultReader(lists if lists is not None else load_lists()),
        )

    @property
    def categories(self) -> tuple[str, ...]:
        return self.head.categories

    def score_texts(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), n_categories] probabilities, max over each text's windows and segments."""
        out = np.zeros((len(texts), len(self.head.categories)), dtype=np.float32)
        if not texts:
            return out
        unique: dict[str, int] = {}
        pairs: list[tuple[int, int, float]] = []  # (text index, piece index, odds divisor)
        for i, text in enumerate(texts):
            pairs.append((i, unique.setdefault(text, len(unique)), 1.0))
            parts = segments(text)
            divisor = float(min(len(parts), MAX_SEGMENT_DIVISOR))
            pairs += [(i, unique.setdefault(part, len(unique)), divisor) for part in parts]
        pieces = list(unique)
        emb, window_owner = self.encoder.embed_windows(pieces)
        probs = self.head.probabilities(emb, self.head.word_logits(pieces)[window_owner])
        per_piece = np.zeros((len(pieces), len(self.head.categories)), dtype=np.float32)
        np.maximum.at(per_piece, window_owner, probs)
        text_idx, piece_idx, divisors = (np.asarray(a) for a in zip(*pairs, strict=True))
        np.maximum.at(out, text_idx, _divide_odds(per_piece[piece_idx], divisors[:, None]))
        return out

    def classify(self, texts: Sequence[NormalisedText]) -> list[ClassifierResult]:
        start = time.perf_counter()
        unique: dict[str, int] = {}
        owners: list[list[int]] = []
        adult_owners: list[list[int]] = []
        for item in texts:
            owners.append([unique.setdefault(form, len(unique)) for _name, form in item.unique_forms()])
            readings = self.adult_reader(item) if self.adult_reader is not None else []
            adult_owners.append([unique.setdefault(r, len(unique)) for r in readings])
        scores = self.score_texts(list(unique))
        sexual = self.head.categories.index(Category.SEXUAL.value) if self.adult_reader is not None else -1
        per_item_ms = (time.perf_counter() - start) * 1000 / max(1, len(texts))
        results = []
        for idx, adult_idx in zip(owners, adult_owners, strict=True):
            best = scores[idx].max(axis=0) if idx else np.zeros(len(self.head.categories))
            out = {c: round(float(s), 6) for c, s in zip(self.head.categories, best, strict=True)}
            if adult_idx:
                out[Signal.SEXUAL_IF_ADULT.value] = round(float(scores[adult_idx, sexual].max()), 6)
            results.append(
                ClassifierResult(
                    classifier=self.name,
                    version=self.version,
                    scores=out,
                    latency_ms=per_item_ms,
                )
            )
        return results
