"""Language classifier: prompts in languages the prompt classifiers do not read are measured, not passed unread."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifiers.base import ClassifierLoadError
from classifiers.language import LanguageClassifier, load_langid
from classifiers.registry import build
from moderation.engine import OTHER_LANGUAGE_FLOOR
from moderation.normalise import normalise
from moderation.policy import load_policy


@pytest.fixture(scope="module")
def language() -> LanguageClassifier:
    clf = build("language", policy=load_policy("default"))
    assert isinstance(clf, LanguageClassifier)
    return clf


def other(clf: LanguageClassifier, text: str) -> float:
    return clf.classify([normalise(text)])[0].scores["other-language"]


@pytest.mark.parametrize(
    "prompt",
    [
        "une femme qui lit dans un café, aquarelle",
        "ein alter Leuchtturm im Sturm, Ölgemälde",
        "un perro corriendo en la playa al atardecer",
        "un gatto che dorme sul divano",
        "кошка сидит на подоконнике",
        "窓辺に座っている猫、水彩画",
    ],
)
def test_prompts_in_other_languages_reach_the_floor(language: LanguageClassifier, prompt: str) -> None:
    result = language.classify([normalise(prompt)])[0]
    assert result.scores["other-language"] >= OTHER_LANGUAGE_FLOOR
    assert result.evidence and result.evidence[0].rule.startswith("lang:")


@pytest.mark.parametrize(
    "prompt",
    [
        "a portrait of a woman with freckles, soft window light, 85mm lens",
        "Lego Arnold Schwarzenegger.",
        "a bowl of pho with fresh basil, food photography",
        "hyperrealistic cyberpunk samurai, trending on artstation, octane render, 8k",
        "croissant and café au lait on a Parisian terrace",
        "HEY WHAT IS UP WITH THE WEATHER TODAY",
    ],
)
def test_english_prompts_stay_under_the_floor(language: LanguageClassifier, prompt: str) -> None:
    """Tag lists, loanwords and shouting: English for this purpose."""
    assert other(language, prompt) < OTHER_LANGUAGE_FLOOR


def test_homoglyph_evasion_is_read_through_the_folded_form(language: LanguageClassifier) -> None:
    """Cyrillic look-alike letters in an English prompt must not make it read as Russian."""
    assert other(language, "pоrnоgrаphic phоtо, еxplicit") < OTHER_LANGUAGE_FLOOR


@pytest.mark.parametrize("prompt", ["a hat", "an espresso machine", "chat noir", "Sonnenuntergang"])
def test_prompts_under_three_words_of_three_letters_are_not_judged(language: LanguageClassifier, prompt: str) -> None:
    """Language ID on two words is a guess (fastText reads "a hat" as German at 0.99)."""
    assert other(language, prompt) == 0.0


def test_a_supported_language_is_not_other() -> None:
    both = LanguageClassifier(["en", "fr"])
    assert other(both, "une femme qui lit dans un café, aquarelle") < OTHER_LANGUAGE_FLOOR
    assert both.version.endswith("+en,fr")


def test_an_unknown_language_code_is_a_load_error() -> None:
    with pytest.raises(ClassifierLoadError, match="unknown language code"):
        LanguageClassifier(["xq"])


def test_options_are_refused_with_a_pointer_to_the_policy() -> None:
    with pytest.raises(ClassifierLoadError, match=r"prompt\.languages\.supported"):
        build("language", {"supported": ["en"]})


def test_a_clause_in_another_language_inside_an_english_prompt_is_read_on_its_own(
    language: LanguageClassifier,
) -> None:
    """Appending a sentence in another language to an English description does not make it English."""
    prompt = "a beautiful beach at sunset with palm trees, golden light, une femme nue allongée sur le sable"
    (result,) = language.classify([normalise(prompt)])
    assert result.scores["other-language"] >= OTHER_LANGUAGE_FLOOR
    (evidence,) = result.evidence
    assert evidence.rule == "lang:fr" and evidence.span is not None
    assert evidence.span.text.strip() == "une femme nue allongée sur le sable"


@pytest.mark.parametrize(
    "prompt",
    [
        "elderly couple holding hands on a park bench in autumn, warm nostalgic tones",
        "Cute kawaii cat logo for a pet store, pastel pink and mint.",
        "a cafe in Paris, art nouveau, Le Déjeuner sur l'herbe recreated with cats, oil painting",
    ],
)
def test_short_clauses_of_english_tag_lists_are_not_read_on_their_own(
    language: LanguageClassifier, prompt: str
) -> None:
    """Clauses under five words read as anything; they count only as part of the whole prompt."""
    assert other(language, prompt) < OTHER_LANGUAGE_FLOOR


SAMPLES = [
    "a red fox in the snow, watercolor",
    "une femme qui lit un livre au soleil",
    "ein Hund läuft über die Wiese im Sommer",
    "кошка сидит на окне и смотрит на улицу",
    "猫が窓の外を見ている",
]


def _ranks(identifier: object) -> list[list[tuple[str, float]]]:
    return [[(lang, round(p, 6)) for lang, p in identifier.rank(t)[:5]] for t in SAMPLES]  # type: ignore[attr-defined]


def test_the_cached_plain_model_reads_exactly_as_the_package_loader(tmp_path: Path) -> None:
    """The xz model is decompressed once into the cache (0.36 s saved per start); same readings."""
    from py3langid import langid

    reference = _ranks(langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True))
    first = load_langid(langid, tmp_path)
    (cached,) = tmp_path.glob("py3langid-*.npz")
    stamp = cached.stat().st_mtime_ns
    again = load_langid(langid, tmp_path)
    assert _ranks(first) == reference and _ranks(again) == reference
    assert cached.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert not list(tmp_path.glob("*.tmp"))


def test_a_truncated_cache_falls_back_to_the_package_and_is_removed(tmp_path: Path) -> None:
    from py3langid import langid

    load_langid(langid, tmp_path)
    (cached,) = tmp_path.glob("py3langid-*.npz")
    cached.write_bytes(cached.read_bytes()[:1000])
    identifier = load_langid(langid, tmp_path)
    assert identifier.classify("ein Hund läuft über die Wiese im Sommer")[0] == "de"
    assert not cached.exists()  # the next start rebuilds it


def test_an_unwritable_cache_falls_back_to_the_package(tmp_path: Path) -> None:
    from py3langid import langid

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    identifier = load_langid(langid, blocker / "cache")
    assert identifier.classify("une femme qui lit un livre au soleil")[0] == "fr"
