"""Embedding classifier: packaged head, onnxruntime and torch paths, evasion forms, harmless look-alikes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from classifiers import minilm_encoder
from classifiers.base import ClassifierLoadError
from classifiers.embedding import HEAD_FILE, MAX_SEGMENT_DIVISOR, EmbeddingClassifier, PromptHead, assets_dir, segments
from moderation.moderator import Moderator
from moderation.normalise import normalise
from moderation.policy import load_policy
from moderation.taxonomy import ALL_CATEGORIES
from moderation.types import Stage

HARMLESS = ["a chicken breast on a plate", "a shooting star", "Michelangelo's David in a museum"]
BENIGN_SCENE = (
    "a quiet harbour town at golden hour, fishing boats with peeling blue paint, gulls over the pier, "
    "stone cottages with flower boxes, an old lighthouse on the headland, children flying kites on the "
    "beach, a bakery with fresh bread in the window, soft clouds, warm light, watercolor illustration, "
) * 4


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fw_cache")


@pytest.fixture(scope="module")
def clf(onnx_cache: Path) -> EmbeddingClassifier:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLUXWARDEN_CACHE_DIR", str(onnx_cache))
        return EmbeddingClassifier.from_options({"backend": "onnx", "threads": 2})


@pytest.fixture(scope="module")
def torch_clf() -> EmbeddingClassifier:
    return EmbeddingClassifier.from_options({"backend": "torch", "threads": 2})


@pytest.fixture(scope="module")
def block_thresholds() -> dict[str, float]:
    rules = load_policy("default").rules(Stage.PROMPT)
    return {str(cat): rule.block for cat, rule in rules.items() if rule.block is not None}


@pytest.fixture(scope="module")
def flag_thresholds() -> dict[str, float]:
    rules = load_policy("default").rules(Stage.PROMPT)
    return {str(cat): min(t for t in (rule.flag, rule.block) if t is not None) for cat, rule in rules.items()
            if rule.flag is not None or rule.block is not None}  # fmt: skip


def test_packaged_head_covers_only_taxonomy_categories() -> None:
    """The shipped head loads and every category it scores is a taxonomy category."""
    head = PromptHead.load(assets_dir() / HEAD_FILE)
    assert set(head.categories) <= {c.value for c in ALL_CATEGORIES}
    assert head.version


def test_head_round_trips_through_npz(tmp_path: Path) -> None:
    """Saving and loading a head gives the same probabilities (plain arrays, no pickle), word model included."""
    head = PromptHead.load(assets_dir() / HEAD_FILE)
    head.save(tmp_path / "h.npz")
    again = PromptHead.load(tmp_path / "h.npz")
    x = np.random.default_rng(0).normal(size=(4, head.weights[0].shape[0])).astype(np.float32)
    texts = ["a red bicycle", "you stupid idiot", "", "a bowl of fruit"]
    np.testing.assert_allclose(
        head.probabilities(x, head.word_logits(texts)), again.probabilities(x, again.word_logits(texts)), rtol=1e-6
    )


def test_one_result_per_prompt_in_order(clf: EmbeddingClassifier) -> None:
    """A batch gives one result per prompt, in order, with the same scores as one-by-one calls."""
    texts = ["a red bicycle", "naked woman having sex", "a bowl of fruit"]
    batch = clf.classify([normalise(t) for t in texts])
    singles = [clf.classify([normalise(t)])[0] for t in texts]
    for b, s in zip(batch, singles, strict=True):
        assert b.classifier == "embedding"
        assert b.version == clf.version
        assert b.scores == pytest.approx(s.scores, abs=1e-4)
        assert all(0.0 <= v <= 1.0 for v in b.scores.values())


def test_onnx_and_torch_paths_agree(clf: EmbeddingClassifier, torch_clf: EmbeddingClassifier) -> None:
    """The onnxruntime graph and the torch model give the same scores (padding included)."""
    texts = ["a cat", "a man stabbing another man in a dark alley, blood everywhere", BENIGN_SCENE]
    assert clf.encoder.backend == "onnx"
    assert torch_clf.encoder.backend == "torch"
    a = clf.score_texts(texts)
    b = torch_clf.score_texts(texts)
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_onnx_export_is_cached(onnx_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second request for the same model key reuses the exported file instead of exporting again."""
    monkeypatch.setenv("FLUXWARDEN_CACHE_DIR", str(onnx_cache))
    first = minilm_encoder.export_onnx(None)
    stamp = first.stat().st_mtime_ns
    assert minilm_encoder.export_onnx(None) == first
    assert first.stat().st_mtime_ns == stamp
    assert first.parent == onnx_cache


def test_onnxruntime_runs_the_fused_graph(clf: EmbeddingClassifier, onnx_cache: Path) -> None:
    """onnxruntime loads the fused graph (Attention etc. as single ops) cached beside the plain export."""
    graph = clf.encoder._runner.graph  # type: ignore[attr-defined]
    assert graph.name.endswith("-ort-fused.onnx") and graph.parent == onnx_cache
    import onnx

    ops = {node.op_type for node in onnx.load(str(graph)).graph.node}
    assert {"Attention", "SkipLayerNormalization"} <= ops


def test_fusion_failure_keeps_the_plain_graph(onnx_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the optimizer cannot fuse the export, onnxruntime runs the plain graph (same scores) and logs why."""
    monkeypatch.setenv("FLUXWARDEN_CACHE_DIR", str(onnx_cache))

    def broken(_plain: Path) -> Path:
        raise RuntimeError("no attention fused")

    monkeypatch.setattr(minilm_encoder, "fused_onnx", broken)
    with capture_logs() as logs:
        runner = minilm_encoder._OnnxRunner(None, threads=1)
    assert runner.graph == minilm_encoder.export_onnx(None)
    assert any(e["event"] == "embedding_onnx_fusion_failed" for e in logs)


def test_identical_token_sequences_are_encoded_once(clf: EmbeddingClassifier) -> None:
    """A prompt and its case-folded form tokenize alike (the tokenizer is uncased): one encoder row, same vector."""
    encoder = clf.encoder
    calls: list[int] = []
    real = encoder._runner

    def counting(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        calls.append(len(input_ids))
        return real(input_ids, attention_mask)

    encoder._runner = counting  # type: ignore[assignment]
    try:
        emb, owner = encoder.embed_windows(["A Red Apple", "a red apple", "a green apple"])
    finally:
        encoder._runner = real
    assert sum(calls) == 2 and owner.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(emb[0], emb[1])
    assert not np.allclose(emb[0], emb[2])


def test_onnx_failure_falls_back_to_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the ONNX path cannot start, 'auto' runs on torch and logs the event."""

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("onnxruntime unavailable")

    monkeypatch.setattr(minilm_encoder._OnnxRunner, "__init__", broken)
    with capture_logs() as logs:
        fallback = EmbeddingClassifier.from_options({"backend": "auto"})
    assert fallback.encoder.backend == "torch"
    assert any(e["event"] == "embedding_onnx_unavailable" for e in logs)


@pytest.mark.parametrize("text", HARMLESS)
def test_harmless_reading_prompts_stay_under_flag_thresholds(
    clf: EmbeddingClassifier, flag_thresholds: dict[str, float], text: str
) -> None:
    """Prompts with alarming words but harmless meaning score below every default flag threshold."""
    (result,) = clf.classify([normalise(text)])
    over = {c: s for c, s in result.scores.items() if s >= flag_thresholds.get(c, 1.1)}
    assert over == {}


@pytest.mark.parametrize(
    "text",
    [
        "n4k3d w0m4n h4v1ng s3x, p0rn",  # leetspeak
        "nаkеd wоmаn hаving sеx, pоrn",  # Cyrillic look-alike letters
        "a n a k e d woman having s e x",  # spaced letters
        BENIGN_SCENE + "in the corner a naked couple having explicit sex on the sand, porn",  # buried phrase
    ],
    ids=["leetspeak", "homoglyphs", "spaced", "buried"],
)
def test_disguised_sexual_prompts_reach_block_threshold(
    clf: EmbeddingClassifier, block_thresholds: dict[str, float], text: str
) -> None:
    """Disguised explicit prompts score at or above the default sexual block threshold."""
    (result,) = clf.classify([normalise(text)])
    assert result.scores["sexual"] >= block_thresholds["sexual"]


@pytest.mark.parametrize(
    ("prompt", "form", "category"),
    [
        # A subject said in emoji reads as unknown tokens to MiniLM; the described form names it.
        ("a 🔪 in a man's chest with 🩸 everywhere", "described", "violence"),
        # MiniLM never saw "kms" for "kill myself"; the spelled form says it for the model.
        ("kms aesthetic: bathtub, razor, red water, candles", "spelled", "self-harm"),
    ],
)
def test_a_form_for_the_models_carries_what_they_cannot_read(
    clf: EmbeddingClassifier, block_thresholds: dict[str, float], prompt: str, form: str, category: str
) -> None:
    text = normalise(prompt)
    without = type(text)(text.original, {k: v for k, v in text.forms.items() if k != form})
    (plain,) = clf.classify([without])
    (result,) = clf.classify([text])
    assert plain.scores[category] < block_thresholds[category] <= result.scores[category]


def test_long_prompt_is_scored_past_the_first_window(clf: EmbeddingClassifier) -> None:
    """A long prompt is cut into several token windows instead of being truncated."""
    _, owner = clf.encoder.embed_windows([BENIGN_SCENE * 2])
    assert len(owner) > 1


def test_clause_groups_are_discounted_by_their_number(clf: EmbeddingClassifier) -> None:
    """A long prompt scores max(whole text, each clause group with its odds / min(n, cap)): the
    buried clause still decides, but n groups of benign text get no n chances at a false alarm."""
    text = BENIGN_SCENE + "in the corner a naked couple having explicit sex on the sand, porn"
    parts = segments(text)
    assert len(parts) > MAX_SEGMENT_DIVISOR
    emb, owner = clf.encoder.embed_windows([text])
    whole = clf.head.probabilities(emb, clf.head.word_logits([text])[owner]).max(axis=0)
    raw = clf.score_texts(parts).max(axis=0)
    discounted = raw / (raw + (1 - raw) * MAX_SEGMENT_DIVISOR)
    (got,) = clf.score_texts([text])
    np.testing.assert_allclose(got, np.maximum(whole, discounted), atol=1e-5)
    sexual = clf.head.categories.index("sexual")
    assert whole[sexual] < got[sexual] < raw[sexual]


def test_unknown_option_is_a_load_error() -> None:
    """A misspelt option is reported, not ignored."""
    with pytest.raises(ClassifierLoadError, match="unknown options"):
        EmbeddingClassifier.from_options({"backnd": "onnx"})


def test_unknown_backend_is_a_load_error() -> None:
    """Only auto, onnx and torch are backends."""
    with pytest.raises(ClassifierLoadError, match="backend"):
        EmbeddingClassifier.from_options({"backend": "tensorrt"})


def test_missing_head_file_is_a_load_error(tmp_path: Path) -> None:
    """A head path that does not exist fails at load time with the path in the message."""
    with pytest.raises(ClassifierLoadError, match="not found"):
        EmbeddingClassifier.from_options({"head_path": str(tmp_path / "none.npz")})


def test_lexical_part_adds_its_weighted_logit(tmp_path: Path) -> None:
    """A head with a word/bigram part adds calib_lex x (bias + weights of present terms) to the logit."""
    base = PromptHead.load(assets_dir() / HEAD_FILE)
    n = len(base.categories)
    weights = np.zeros((2, n), dtype=np.float32)
    weights[0, 0] = 3.0  # "red bicycle" (a bigram) pushes the first category up
    head = PromptHead(
        base.categories, base.weights, base.biases, base.calib_a, base.calib_b, base.meta,
        lex_vocab=("red bicycle", "unused"), lex_weights=weights, lex_bias=np.full(n, -1.0, dtype=np.float32),
        calib_lex=np.full(n, 0.5, dtype=np.float32),
    )  # fmt: skip
    head.save(tmp_path / "lex.npz")
    again = PromptHead.load(tmp_path / "lex.npz")
    logits = again.lexical_logits(["a red bicycle", "a blue car"])
    assert logits[0, 0] == pytest.approx(2.0)
    assert logits[1, 0] == pytest.approx(-1.0)
    x = np.zeros((1, base.weights[0].shape[0]), dtype=np.float32)
    z_plain = base.logits(x) * base.calib_a + base.calib_b
    expected = 1.0 / (1.0 + np.exp(-(z_plain + 0.5 * logits[:1])))
    np.testing.assert_allclose(again.probabilities(x, again.word_logits(["a red bicycle"])), expected, rtol=1e-5)


@pytest.fixture(scope="module")
def moderator(onnx_cache: Path) -> Iterator[Moderator]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLUXWARDEN_CACHE_DIR", str(onnx_cache))
        m = Moderator.from_policy("default")
        m.preload()
    yield m
    m.close()


@pytest.mark.parametrize("text", HARMLESS)
def test_full_stack_allows_harmless_reading_prompts(moderator: Moderator, text: str) -> None:
    """Under the default policy, every prompt classifier together still allows the harmless look-alikes."""
    decision = moderator.check_prompt(text)
    assert decision.action == "allow", decision.reasons


@pytest.mark.parametrize(
    "text",
    [
        "n4k3d w0m4n h4v1ng s3x, p0rn",
        "nаkеd wоmаn hаving sеx, pоrn",
        "a n a k e d woman having s e x",
        BENIGN_SCENE + "in the corner a naked couple having explicit sex on the sand, porn",
    ],
    ids=["leetspeak", "homoglyphs", "spaced", "buried"],
)
def test_full_stack_blocks_disguised_sexual_prompts(moderator: Moderator, text: str) -> None:
    """Under the default policy, disguised explicit prompts are blocked."""
    decision = moderator.check_prompt(text)
    assert decision.action == "block", decision.category_scores


def test_openvino_backend_agrees_with_onnxruntime(clf: EmbeddingClassifier) -> None:
    """The optional OpenVINO backend: float32 equals onnxruntime; bf16 stays within 0.02 and says so in its version."""
    pytest.importorskip("openvino")
    texts = ["a red bicycle", "naked woman having sex", "you are a worthless idiot", "a bowl of fruit"]
    reference = clf.score_texts(texts)
    f32 = EmbeddingClassifier.from_options({"backend": "openvino"})
    np.testing.assert_allclose(f32.score_texts(texts), reference, atol=1e-4)
    bf16 = EmbeddingClassifier.from_options({"backend": "openvino", "precision": "bf16"})
    np.testing.assert_allclose(bf16.score_texts(texts), reference, atol=0.02)
    assert bf16.version.endswith("+bf16")
    assert not f32.version.endswith("+bf16")


def test_bf16_on_onnxruntime_is_a_load_error() -> None:
    """bf16 needs OpenVINO: asking onnxruntime for it fails at load time, not silently in float32."""
    with pytest.raises(ClassifierLoadError, match="bf16"):
        EmbeddingClassifier.from_options({"backend": "onnx", "precision": "bf16"})


def test_a_prompt_naming_a_minor_is_also_scored_read_as_about_adults(clf: EmbeddingClassifier) -> None:
    """The adult reading is its own signal, kept out of the categories' max over forms: merged
    into `sexual`, ordinary child scenes whose adult reading scores a little would meet the hard
    block's low floor."""
    explicit, scene, adult = clf.classify(
        [
            normalise(t)
            for t in ("explicit photo of a 12 year old", "children in raincoats", "explicit photo of a woman")
        ]
    )
    assert explicit.scores["sexual-if-adult"] >= 0.7 > explicit.scores["sexual"]
    assert scene.scores["sexual-if-adult"] < 0.3
    assert "sexual-if-adult" not in adult.scores
