"""Policy files load strictly, report file:line:col, and can never weaken the hard block."""

from __future__ import annotations

from pathlib import Path

import pytest

from moderation.policy import PRESETS, Policy, PolicyError, load_policy, load_policy_text, policy_json_schema
from moderation.taxonomy import Category


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    return info.value.problems


@pytest.mark.parametrize("name", [*PRESETS, "no-agpl"])
def test_presets_load(name: str) -> None:
    """Every shipped preset is a valid policy."""
    assert isinstance(load_policy(name), Policy)


def test_typo_key_names_line_column_and_field(tmp_path: Path) -> None:
    """A misspelt key is reported with file:line:col and its dotted path."""
    path = write(tmp_path, "id: x\nextends: default\nprompt:\n  categroies:\n    sexual: {block: 0.5}\n")
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:4:3: prompt.categroies:") and "unknown field" in problem


def test_bad_threshold_names_line(tmp_path: Path) -> None:
    """A threshold outside [0, 1] is reported at its line."""
    path = write(tmp_path, "id: x\nextends: default\nprompt:\n  categories:\n    sexual: {flag: 0.3, block: 1.5}\n")
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:5:") and "prompt.categories.sexual.block" in problem


def test_threshold_of_wrong_type(tmp_path: Path) -> None:
    """A threshold that is not a number is an error, not a silent default."""
    path = write(tmp_path, "id: x\nextends: default\nprompt:\n  categories:\n    hate: {block: high}\n")
    assert "prompt.categories.hate.block" in problems(path)[0]


def test_unknown_category_lists_valid_ones(tmp_path: Path) -> None:
    """An unknown category name is rejected with the list of valid categories."""
    path = write(tmp_path, "id: x\nextends: default\nprompt:\n  categories:\n    nudity: {block: 0.5}\n")
    problem = problems(path)[0]
    assert "unknown category 'nudity'" in problem and "sexual/minors" in problem


def test_raising_sexual_minors_is_rejected(tmp_path: Path) -> None:
    """A policy that raises the sexual/minors threshold above the cap does not load."""
    path = write(tmp_path, "id: x\nextends: default\nprompt:\n  categories:\n    sexual/minors: {block: 0.9}\n")
    assert "hard block" in problems(path)[0]


def test_turning_sexual_minors_into_flag_is_rejected(tmp_path: Path) -> None:
    """sexual/minors cannot be downgraded to a flag."""
    path = write(tmp_path, "id: x\nextends: default\nprompt:\n  categories:\n    sexual/minors: {flag: 0.1}\n")
    assert "hard block" in problems(path)[0]


def test_policy_without_sexual_minors_is_rejected(tmp_path: Path) -> None:
    """A stand-alone policy must carry the hard block."""
    path = write(tmp_path, "id: x\nprompt:\n  categories:\n    sexual: {block: 0.5}\n")
    assert "sexual/minors" in problems(path)[0]


def test_malformed_yaml_reports_position(tmp_path: Path) -> None:
    """Broken YAML is a positioned error, not a traceback."""
    path = write(tmp_path, "id: x\nprompt: [unclosed\n")
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:") and "invalid YAML" in problem


def test_duplicate_key_is_rejected(tmp_path: Path) -> None:
    """A repeated key would silently override the first; it is an error instead."""
    path = write(tmp_path, "id: x\nid: y\nextends: default\n")
    assert "duplicate key 'id'" in problems(path)[0]


def test_non_mapping_document_is_rejected(tmp_path: Path) -> None:
    """A YAML list is not a policy."""
    path = write(tmp_path, "- a\n- b\n")
    assert "mapping" in problems(path)[0]


def test_missing_file_is_clear(tmp_path: Path) -> None:
    """A path that does not exist says so."""
    assert "no such policy file" in problems(tmp_path / "nope.yaml")[0]


def test_unknown_preset_is_clear() -> None:
    """An unknown preset name lists the presets."""
    with pytest.raises(PolicyError, match="presets"):
        load_policy("extra-lenient")


def test_unknown_classifier_is_rejected(tmp_path: Path) -> None:
    """A classifier name the registry does not know is a load error."""
    path = write(tmp_path, "id: x\nextends: default\nprompt:\n  classifiers: [{name: lexikon}]\n")
    assert "unknown prompt classifier 'lexikon'" in problems(path)[0]


def test_extends_inherits_and_overrides(tmp_path: Path) -> None:
    """A child policy inherits the preset and replaces only what it names."""
    path = write(tmp_path, "id: mine\nextends: default\nprompt:\n  categories:\n    sexual: {flag: 0.5}\n")
    policy = load_policy(path)
    base = load_policy("default")
    assert policy.prompt.categories[Category.SEXUAL].block is None  # a rule is replaced whole
    assert policy.prompt.categories[Category.HATE] == base.prompt.categories[Category.HATE]


def test_extends_relative_path(tmp_path: Path) -> None:
    """extends: accepts a path relative to the extending file."""
    write(tmp_path, "id: base\nextends: default\nmax_prompt_chars: 123\n", "base.yaml")
    path = write(tmp_path, "id: child\nextends: ./base.yaml\n")
    assert load_policy(path).max_prompt_chars == 123


def test_extends_cycle_is_reported(tmp_path: Path) -> None:
    """Two files extending each other are an error, not a recursion crash."""
    write(tmp_path, "id: a\nextends: ./b.yaml\n", "a.yaml")
    write(tmp_path, "id: b\nextends: ./a.yaml\n", "b.yaml")
    assert "cycle" in problems(tmp_path / "a.yaml")[0]


def test_error_in_parent_points_at_parent(tmp_path: Path) -> None:
    """A bad value inherited from a parent file is reported at the parent's line."""
    parent = write(tmp_path, "id: base\nextends: default\nmax_prompt_chars: -1\n", "base.yaml")
    path = write(tmp_path, "id: child\nextends: ./base.yaml\n")
    assert problems(path)[0].startswith(f"{parent}:3:")


def test_on_error_cannot_be_allow(tmp_path: Path) -> None:
    """Failing open is not a policy option."""
    path = write(tmp_path, "id: x\nextends: default\non_error: allow\n")
    assert "on_error" in problems(path)[0]


def test_blur_on_prompt_is_rejected(tmp_path: Path) -> None:
    """Prompts cannot be blurred; a blur threshold in the prompt stage is an error."""
    path = write(tmp_path, "id: x\nextends: default\nprompt:\n  categories:\n    sexual: {blur: 0.5}\n")
    assert "images only" in problems(path)[0]


def test_sha256_is_stable() -> None:
    """Loading the same policy twice gives the same hash."""
    assert load_policy("default").sha256 == load_policy("default").sha256


def test_sha256_changes_with_a_threshold(tmp_path: Path) -> None:
    """Changing one threshold changes the hash."""
    a = load_policy(write(tmp_path, "id: x\nextends: default\n", "a.yaml"))
    b = load_policy(
        write(tmp_path, "id: x\nextends: default\nprompt:\n  categories:\n    hate: {block: 0.49}\n", "b.yaml")
    )
    assert a.sha256 != b.sha256


def test_sha256_changes_with_word_lists(tmp_path: Path) -> None:
    """Adding a word changes the hash: the lists are part of what decides."""
    a = load_policy(write(tmp_path, "id: x\nextends: default\n", "a.yaml"))
    b = load_policy(write(tmp_path, "id: x\nextends: default\nlists:\n  add: {sexual: [zorblax]}\n", "b.yaml"))
    assert a.sha256 != b.sha256


def test_schema_documents_every_field() -> None:
    """The JSON Schema carries a description for every top-level field."""
    schema = policy_json_schema()
    assert all("description" in spec for spec in schema["properties"].values())


def test_load_from_text() -> None:
    """Policies can be loaded from a string, with the given name in errors."""
    with pytest.raises(PolicyError, match=r"^inline:\d+:\d+: invalid YAML"):
        load_policy_text("id: [1\n", name="inline")


def test_a_language_code_that_is_not_one_is_named_at_its_line(tmp_path: Path) -> None:
    """A language name instead of an ISO 639-1 code ("english") does not load, and the error says where."""
    path = write(tmp_path, "id: x\nextends: default\nprompt:\n  languages:\n    supported: [english]\n")
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:5:") and "prompt.languages.supported" in problem


def test_the_action_for_other_languages_is_allow_flag_or_block(tmp_path: Path) -> None:
    path = write(tmp_path, "id: x\nextends: default\nprompt:\n  languages: {other: blur}\n")
    assert "prompt.languages.other" in problems(path)[0]


def test_a_child_policy_changes_the_language_action_and_keeps_the_supported_list() -> None:
    """Mappings merge key by key: permissive's `languages: {other: flag}` keeps `supported: [en]`."""
    permissive = load_policy("permissive")
    assert permissive.prompt.languages.other == "flag" and permissive.prompt.languages.supported == ["en"]
    assert load_policy("default").prompt.languages.other == load_policy("strict").prompt.languages.other == "block"


def test_a_language_rule_without_the_language_classifier_does_not_load(tmp_path: Path) -> None:
    """A child that replaces the classifier list and drops `language` would say it blocks other
    languages while letting them through unread: a load error naming the field."""
    path = write(tmp_path, "id: x\nextends: default\nprompt:\n  classifiers: [{name: lexicon}, {name: embedding}]\n")
    (problem,) = problems(path)
    assert "prompt.languages.other" in problem and "no 'language' classifier" in problem
    allowed = write(
        tmp_path,
        "id: y\nextends: default\nprompt:\n  classifiers: [{name: lexicon}]\n  languages: {other: allow}\n",
        name="y.yaml",
    )
    assert load_policy(allowed).prompt.languages.other == "allow"
