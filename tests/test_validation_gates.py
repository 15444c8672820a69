"""bench/validation_gates.py: a candidate's thresholds and head reach the policy; the gates count what they say."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench import validation_gates
from classifiers.embedding import assets_dir
from moderation.policy import load_policy


def test_the_shipped_head_as_a_candidate_gives_the_shipped_default_policy() -> None:
    """apply_thresholds keeps the policies current, so the in-memory rewrite must be the identity here."""
    policy = validation_gates.candidate_policy(assets_dir())
    shipped = load_policy("default")
    assert policy.prompt.categories == shipped.prompt.categories
    lexicon = [s for s in policy.prompt.classifiers if s.name == "lexicon"]
    assert lexicon == [s for s in shipped.prompt.classifiers if s.name == "lexicon"]
    (embedding,) = [s for s in policy.prompt.classifiers if s.name == "embedding"]
    assert Path(embedding.options["head_path"]) == assets_dir() / "prompt_head.npz"


def test_a_candidates_thresholds_and_lexicon_options_replace_the_shipped_ones(tmp_path: Path) -> None:
    shutil.copy(assets_dir() / "prompt_head.metrics.json", tmp_path)
    metrics = json.loads((tmp_path / "prompt_head.metrics.json").read_text())
    metrics["thresholds_from_val"]["default"]["sexual"] = {"flag": 0.61, "block": 0.83}
    metrics["corroboration_from_val"]["corroborate_at"] = 0.27
    (tmp_path / "prompt_head.metrics.json").write_text(json.dumps(metrics))
    policy = validation_gates.candidate_policy(tmp_path)
    sexual = policy.prompt.categories["sexual"]
    assert (sexual.flag, sexual.block) == (0.61, 0.83)
    (lexicon,) = [s for s in policy.prompt.classifiers if s.name == "lexicon"]
    assert lexicon.options["corroborate_at"] == 0.27
    (embedding,) = [s for s in policy.prompt.classifiers if s.name == "embedding"]
    assert embedding.options["head_path"] == str(tmp_path / "prompt_head.npz")
    # The image stage has its own sexual rule, which a prompt head's thresholds must not touch.
    assert policy.image.categories == load_policy("default").image.categories


def test_gates_count_unsafe_rows_caught_and_benign_rows_flagged() -> None:
    rows = [
        ("i2p_clean", False, True),
        ("i2p_clean", False, False),
        ("i2p_clean", True, True),  # not a clean prompt: no gate counts it
        ("adversarial_nibbler", True, True),
        ("adversarial_nibbler", True, False),
        ("ringabell_pairs", True, True),
        ("ringabell", True, True),
        ("ringabell", False, True),  # Ring-A-Bell's safe pairs are no recall row
        ("coco", False, True),
        ("partiprompts", False, False),
    ]
    got = {name: (hits, n) for name, hits, n in validation_gates.count(rows)}
    assert got == {
        "clean I2P flagged": (1, 2),
        "Nibbler caught": (1, 2),
        "I2P cut caught": (0, 0),
        "RECE caught": (0, 0),
        "Ring-A-Bell caught": (2, 2),
        "benign T2I flagged": (1, 2),
    }


def test_prompt_eval_candidate_columns_use_the_candidates_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench/prompt_eval.py --candidate: its fluxwarden and embedding columns read the candidate's policy."""
    from bench import prompt_eval

    shutil.copy(assets_dir() / "prompt_head.metrics.json", tmp_path)
    metrics = json.loads((tmp_path / "prompt_head.metrics.json").read_text())
    metrics["thresholds_from_val"]["default"]["violence"] = {"flag": 0.42, "block": 0.66}
    (tmp_path / "prompt_head.metrics.json").write_text(json.dumps(metrics))
    assert prompt_eval.default_policy().prompt.categories == load_policy("default").prompt.categories
    monkeypatch.setattr(prompt_eval, "CANDIDATE", [tmp_path])
    violence = prompt_eval.default_policy().prompt.categories["violence"]
    assert (violence.flag, violence.block) == (0.42, 0.66)
