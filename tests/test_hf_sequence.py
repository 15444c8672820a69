"""hf_sequence: an operator's local sequence-classification model, exercised with a tiny random BERT."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifiers.base import ClassifierLoadError
from classifiers.hf_sequence import HFSequenceClassifier
from moderation.normalise import normalise

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "photo", "of", "the", "cat", "nude", "kill", "you"]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-label BERT built from a config and saved locally (nothing downloaded)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=64, num_labels=3, id2label={0: "safe", 1: "nsfw", 2: "toxic"},
        label2id={"safe": 0, "nsfw": 1, "toxic": 2},
    )  # fmt: skip
    path = tmp_path_factory.mktemp("tiny_seq_clf")
    BertForSequenceClassification(config).eval().save_pretrained(path)
    BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)}, model_max_length=64).save_pretrained(path)
    return path


def _direct_probs(path: Path, text: str) -> list[float]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(path), local_files_only=True).eval()
    with torch.inference_mode():
        return torch.softmax(model(**tok([text], return_tensors="pt")).logits, -1)[0].tolist()


def test_scores_are_the_models_probabilities_under_mapped_categories(tiny_model_dir: Path) -> None:
    """A mapped label's score equals the model's own softmax probability for a single-form prompt."""
    clf = HFSequenceClassifier.from_options({"path": str(tiny_model_dir), "labels": {"nsfw": "sexual"}})
    (result,) = clf.classify([normalise("a photo of the cat")])
    expected = _direct_probs(tiny_model_dir, "a photo of the cat")[1]
    assert result.classifier == "hf_sequence"
    assert set(result.scores) == {"sexual"}
    assert result.scores["sexual"] == pytest.approx(expected, abs=1e-5)


def test_score_is_max_over_prompt_forms(tiny_model_dir: Path) -> None:
    """A prompt whose folded form differs is scored on every form and the highest probability wins."""
    clf = HFSequenceClassifier.from_options({"path": str(tiny_model_dir), "labels": {"toxic": "harassment"}})
    item = normalise("K I L L you")
    (result,) = clf.classify([item])
    per_form = [_direct_probs(tiny_model_dir, text)[2] for _, text in item.unique_forms()]
    assert len(per_form) > 1
    assert result.scores["harassment"] == pytest.approx(max(per_form), abs=1e-5)


def test_batch_returns_one_result_per_prompt_in_order(tiny_model_dir: Path) -> None:
    """Batching keeps order: the i-th result belongs to the i-th prompt."""
    clf = HFSequenceClassifier.from_options({"path": str(tiny_model_dir), "labels": {"nsfw": "sexual"}})
    texts = ["a photo of the cat", "nude", "the cat"]
    batch = clf.classify([normalise(t) for t in texts])
    singles = [clf.classify([normalise(t)])[0].scores["sexual"] for t in texts]
    assert [r.scores["sexual"] for r in batch] == pytest.approx(singles, abs=1e-5)


def test_multi_label_option_uses_sigmoid(tiny_model_dir: Path) -> None:
    """multi_label=true scores labels independently, so mapped scores need not sum below one."""
    clf = HFSequenceClassifier.from_options(
        {"path": str(tiny_model_dir), "labels": {"safe": "violence", "nsfw": "sexual", "toxic": "hate"},
         "multi_label": True}
    )  # fmt: skip
    soft = HFSequenceClassifier.from_options(
        {"path": str(tiny_model_dir), "labels": {"safe": "violence", "nsfw": "sexual", "toxic": "hate"}}
    )
    (multi,) = clf.classify([normalise("a cat")])
    (single,) = soft.classify([normalise("a cat")])
    assert sum(single.scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert multi.scores != single.scores


def test_unknown_model_label_is_a_load_error(tiny_model_dir: Path) -> None:
    """Mapping a label the model does not have fails at load time and names the model's labels."""
    with pytest.raises(ClassifierLoadError, match="not in the model's labels"):
        HFSequenceClassifier.from_options({"path": str(tiny_model_dir), "labels": {"porn": "sexual"}})


def test_unknown_category_is_a_load_error(tiny_model_dir: Path) -> None:
    """Mapping to a category outside the taxonomy fails at load time."""
    with pytest.raises(ClassifierLoadError, match="unknown category"):
        HFSequenceClassifier.from_options({"path": str(tiny_model_dir), "labels": {"nsfw": "nsfw"}})


def test_missing_folder_is_a_load_error(tmp_path: Path) -> None:
    """A path that is not a folder fails with a clear message, never a download attempt."""
    with pytest.raises(ClassifierLoadError, match="not found"):
        HFSequenceClassifier.from_options({"path": str(tmp_path / "absent"), "labels": {"x": "sexual"}})


def test_unknown_option_is_a_load_error(tiny_model_dir: Path) -> None:
    """A misspelt option is reported instead of being ignored."""
    with pytest.raises(ClassifierLoadError, match="unknown options"):
        HFSequenceClassifier.from_options({"path": str(tiny_model_dir), "labels": {"nsfw": "sexual"}, "lables": {}})
